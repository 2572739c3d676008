"""A client for any OpenAI-compatible `/v1/chat/completions` (OpenAI, vLLM, Ollama, llama.cpp
server, ragortune's own server), over plain httpx so no vendor SDK is needed at run time.

`base_url` follows the OpenAI SDK convention: it includes the `/v1` prefix
(`http://localhost:11434/v1` for Ollama, `http://localhost:8000/v1` for vLLM).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from ragortune.errors import ConfigError
from ragortune.generate.llm import Completion, Message

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAICompatLLM:
    """Chat completions over HTTP; usage is what the server reports."""

    def __init__(
        self, model: str, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def _body(self, messages: Sequence[Message], max_tokens: int, temperature: float,
              stream: bool, stop: Sequence[str] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model, "messages": list(messages), "max_tokens": max_tokens,
            "temperature": temperature, "stream": stream,
        }
        if stop:
            body["stop"] = list(stop)
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _fail(self, response: httpx.Response) -> ConfigError:
        try:
            detail = response.json().get("error", response.text)
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
        except ValueError:
            detail = response.text
        hint = " (does the base URL end with /v1?)" if response.status_code == 404 else ""
        if response.status_code in (401, 403):
            hint = " (set RAGORTUNE_LLM_API_KEY)"
        return ConfigError(
            f"LLM endpoint {self.base_url} answered HTTP {response.status_code}: "
            f"{str(detail)[:300]}{hint}"
        )

    def _unreachable(self, exc: httpx.HTTPError) -> ConfigError:
        return ConfigError(
            f"LLM endpoint {self.base_url} unreachable ({exc.__class__.__name__}: {exc}); "
            "check that the server runs and RAGORTUNE_LLM_BASE_URL points at it"
        )

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        try:
            response = self.client.post(
                "/chat/completions", json=self._body(messages, max_tokens, temperature, False, stop)
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code != 200:
            raise self._fail(response)
        data = response.json()
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Completion(
            text=(choice["message"].get("content") or "").strip(),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            model=data.get("model", self.model),
            finish_reason=choice.get("finish_reason") or "stop",
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str | Completion]:
        pieces: list[str] = []
        usage: dict[str, Any] = {}
        model, finish = self.model, "stop"
        try:
            with self.client.stream(
                "POST", "/chat/completions", json=self._body(messages, max_tokens, temperature, True, stop)
            ) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._fail(response)
                for event in _sse_events(response.iter_lines()):
                    model = event.get("model") or model
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        finish = choice.get("finish_reason") or finish
                        if piece:
                            pieces.append(piece)
                            yield piece
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        yield Completion(
            "".join(pieces).strip(), int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)), model, finish,
        )


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """JSON payloads of `data:` lines until `[DONE]`; comments and other fields are skipped."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        if payload:
            yield json.loads(payload)
