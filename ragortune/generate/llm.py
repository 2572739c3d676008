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
