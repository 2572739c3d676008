"""The RAG prompt: one worked example, then numbered context passages and the question.

Measured on the 30 answerable demo questions with SmolLM2-135M (k=3, greedy, gold answer
contained in the reply): a long instruction with an abstention clause and source labels gave
15-17/30 (the model copied labels or the last passage); a one-line "short phrase copied from the
context" instruction with the best passage printed last, next to the question, gave 21/30;
stopping at the first sentence (rag.STOP) cost 2 of those but halved generation time; adding
one worked example as a prior chat turn gave 22/30 with the stop. Small models copy what is
nearest the question, so passages are printed in reverse rank; the numbers stay the ranks.
Abstention is the gate's job (rag.py), not the prompt's: the model does not do it reliably.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragortune.generate.llm import Message

NOT_IN_KB = "Not in the knowledge base."
SYSTEM = ("Answer the question with a short phrase copied from the context, "
          "then cite the passage number like [1].")


@dataclass(frozen=True)
class Passage:
    """One numbered context block: the text and where it came from."""

    text: str
    source: str
    heading: str = ""


EXAMPLE_CONTEXT = ("[2] Visitors sign in at the front desk.\n\n"
                   "[1] The office opens at 08:30 on weekdays and closes at 18:00.")
EXAMPLE_QUESTION = "When does the office open?"
EXAMPLE_ANSWER = "The office opens at 08:30 on weekdays [1]."


def _turn(context: str, question: str) -> str:
    return f"Context:\n{context}\n\nQuestion: {question}"


def rag_messages(question: str, passages: Sequence[Passage]) -> list[Message]:
    """Chat messages asking for an answer from `passages`: [1] is the best, printed last."""
    numbered = list(enumerate(passages, start=1))
    context = "\n\n".join(f"[{n}] {p.text.strip()}" for n, p in reversed(numbered))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": _turn(EXAMPLE_CONTEXT, EXAMPLE_QUESTION)},
            {"role": "assistant", "content": EXAMPLE_ANSWER},
            {"role": "user", "content": _turn(context, question.strip())}]


def fallback_messages(question: str) -> list[Message]:
    """No context passed the threshold and the user chose the model's own answer."""
    return [{"role": "user", "content": f"{question.strip()}\nAnswer in one short sentence."}]
