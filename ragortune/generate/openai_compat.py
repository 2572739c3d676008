"""A client for any OpenAI-compatible `/v1/chat/completions` (OpenAI, vLLM, Ollama, llama.cpp
server, ragortune's own server) through the official `openai` SDK: retries with exponential
backoff on connection errors, 408/409/429 and 5xx; a timeout; streaming; and the SDK's typed
errors turned into one-line `RagortuneError`s that name the endpoint and the fix.

`base_url` follows the OpenAI SDK convention: it includes the `/v1` prefix
(`http://localhost:11434/v1` for Ollama, `http://localhost:8000/v1` for vLLM).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import openai

from ragortune.embed import MAX_RETRIES, OPENAI_BASE_URL, endpoint_error, openai_client, redact_url
from ragortune.errors import RagortuneError
from ragortune.generate.llm import Completion, Message

DEFAULT_BASE_URL = OPENAI_BASE_URL


class OpenAICompatLLM:
    """Chat completions over HTTP; usage is what the server reports."""

    def __init__(
        self, model: str, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None,
        timeout: float = 120.0, max_retries: int = MAX_RETRIES,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url.rstrip("/")
        self.client = openai_client(self.base_url, api_key, timeout=timeout,
                                    max_retries=max_retries)

    def _request(self, messages: Sequence[Message], max_tokens: int, temperature: float,
                 stop: Sequence[str] | None, stream: bool) -> Any:
        extra: dict[str, Any] = {"stop": list(stop)} if stop else {}
        if stream:
            extra["stream_options"] = {"include_usage": True}
        try:
            return self.client.chat.completions.create(
                model=self.model, messages=list(messages), max_tokens=max_tokens,
                temperature=temperature, stream=stream, **extra)
        except openai.OpenAIError as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> RagortuneError:
        return endpoint_error(exc, self.client, "LLM", self.model, "RAGORTUNE_LLM")

    def _not_a_completion(self, reply: Any) -> RagortuneError:
        return RagortuneError(
            f"LLM endpoint {redact_url(self.base_url)} did not answer with a chat completion "
            f"({str(reply)[:120]!r}): does the base URL end with /v1?")

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        reply = self._request(messages, max_tokens, temperature, stop, stream=False)
        if not getattr(reply, "choices", None):
            raise self._not_a_completion(reply)
        choice = reply.choices[0]
        usage = reply.usage
        return Completion(
            text=(choice.message.content or "").strip(),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            model=reply.model or self.model,
            finish_reason=choice.finish_reason or "stop",
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str | Completion]:
        chunks = self._request(messages, max_tokens, temperature, stop, stream=True)
        if isinstance(chunks, str):
            raise self._not_a_completion(chunks)
        pieces: list[str] = []
        prompt_tokens = completion_tokens = 0
        model, finish = self.model, "stop"
        try:
            with chunks:
                for chunk in chunks:
                    model = chunk.model or model
                    if chunk.usage is not None:
                        prompt_tokens = chunk.usage.prompt_tokens
                        completion_tokens = chunk.usage.completion_tokens
                    for choice in chunk.choices or []:
                        finish = choice.finish_reason or finish
                        piece = choice.delta.content if choice.delta else None
                        if piece:
                            pieces.append(piece)
                            yield piece
        except openai.OpenAIError as exc:  # a dropped connection, or an error sent in-band
            raise self._error(exc) from None
        yield Completion("".join(pieces).strip(), prompt_tokens, completion_tokens, model, finish)
