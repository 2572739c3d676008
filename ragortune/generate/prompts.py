"""The RAG prompt: numbered context passages, then the question.

Kept short and extractive on purpose: SmolLM2-135M follows one plain instruction next to the
question far better than a long system prompt (measured on the demo questions, see
docs/answers.md). Larger models follow it just as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragortune.generate.llm import Message

NOT_IN_KB = "Not in the knowledge base."
SYSTEM = "You answer questions using only the numbered context. Cite sources as [n]."


@dataclass(frozen=True)
class Passage:
    """One numbered context block: the text and where it came from."""

    text: str
    source: str
    heading: str = ""


def label(passage: Passage) -> str:
    return f"{passage.source} > {passage.heading}" if passage.heading else passage.source


def rag_messages(question: str, passages: Sequence[Passage]) -> list[Message]:
    """Chat messages asking for an answer from `passages`, numbered from 1, cited as [n]."""
    context = "\n\n".join(
        f"[{n}] ({label(p)})\n{p.text.strip()}" for n, p in enumerate(passages, start=1)
    )
    user = (
        f"Context:\n{context}\n\n"
        f"Question: {question.strip()}\n"
        "Answer in one short sentence using only the context, and cite it like [1]. "
        f"If the context does not answer the question, reply: {NOT_IN_KB}"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def fallback_messages(question: str) -> list[Message]:
    """No context passed the threshold and the user chose the model's own answer."""
    return [{"role": "user", "content": f"{question.strip()}\nAnswer in one short sentence."}]
