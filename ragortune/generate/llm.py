"""The `LLM` protocol every generator backend implements, and the data it returns.

A backend is anything with `complete` and `stream`; RAG, the server and the evaluation
code only ever see this protocol, so a local model and a remote endpoint are interchangeable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict


class Message(TypedDict):
    """One chat turn in the OpenAI shape (`role` is system, user or assistant)."""

    role: str
    content: str


@dataclass(frozen=True)
class Completion:
    """Generated text with the token counts it cost (as the backend counted them)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    finish_reason: str = "stop"


class LLM(Protocol):
    """A chat model: messages in, text and token usage out."""

    name: str

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        """Generate one answer; `temperature=0` means greedy (reproducible); generation ends at
        the first `stop` string, which is not part of the text (as in OpenAI's API)."""
        ...

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str | Completion]:
        """Yield text pieces as they are generated, then one final `Completion` (full text, usage)."""
        ...


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Text before the first stop string (OpenAI semantics: the stop itself is not returned)."""
    positions = [i for s in stop or () if (i := text.find(s)) >= 0]
    return text[: min(positions)] if positions else text


def finished(text: str, new_tokens: Sequence[int], max_tokens: int, eos_token_id: int | None,
             stop: Sequence[str] | None, n_prompt: int, model: str) -> Completion:
    """The `Completion` of a local generation: cut at the first stop string, and `length` as
    finish reason only when the budget ran out before the end-of-sequence token."""
    cut = cut_at_stop(text, stop)
    ran_out = (cut == text and len(new_tokens) >= max_tokens
               and int(new_tokens[-1]) != eos_token_id)
    return Completion(cut.strip(), n_prompt, len(new_tokens), model,
                      "length" if ran_out else "stop")

