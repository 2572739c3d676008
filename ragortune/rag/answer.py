"""Question → retrieval → gating → prompt → answer with citations, token usage and stage timings.

Gating happens before generation: when no chunk reaches the similarity threshold the answer is
"not in the knowledge base" and the LLM is never called (unless the caller asks for the model's
own answer, which is then marked as such). Citations `[n]` the model writes are mapped back to
the numbered chunks; numbers that match no chunk are dropped from the text and reported.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ragortune.errors import InputError
from ragortune.generate.llm import LLM, Completion, Message
from ragortune.generate.prompts import NOT_IN_KB, Passage, fallback_messages, rag_messages
from ragortune.judge import is_abstention
from ragortune.kb import KnowledgeBase
from ragortune.retrieve import Hit, search

OnEmpty = Literal["abstain", "model"]
ON_EMPTY = ("abstain", "model")
FALLBACK_MARK = "[not from the knowledge base] "
MAX_TOKENS = 64  # answers are one sentence; longer budgets only add latency
# One sentence is the answer; stopping there halves generation time (the model tends to ramble).
STOP = (". ", "\n")
CONTEXT_K = 3  # chunks in the prompt: SmolLM2 found the gold answer in 18/30 at k=2, 21 at 3, 18 at 5
_WORD = re.compile(r"[a-z0-9$€£]+(?:[.,:/%-][a-z0-9]+)*%?")
_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@dataclass(frozen=True)
class Citation:
    """A context chunk the answer points at as [n]."""

    n: int
    chunk_id: str
    source: str
    heading: str
    title: str
    similarity: float
    text: str


@dataclass(frozen=True)
class Usage:
    """What one question cost: tokens per kind and wall seconds per stage."""

    embedding_tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    embed_s: float = 0.0
    retrieve_s: float = 0.0
    generate_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.embed_s + self.retrieve_s + self.generate_s


@dataclass(frozen=True)
class Context:
    """Retrieval result, before generation: the top-k chunks, numbered from 1; empty when
    none reached the threshold (the gate)."""

    question: str
    hits: tuple[Hit, ...]
    threshold: float | None
    usage: Usage

    def passages(self) -> list[Passage]:
        return [Passage(h.text, h.source, h.heading) for h in self.hits]

    def sources(self) -> tuple[Citation, ...]:
        return tuple(_citation(n, h) for n, h in enumerate(self.hits, start=1))


@dataclass(frozen=True)
class Answer:
    """The answer and everything a caller needs to trust or audit it.

    `abstained`: no grounded answer ("gate" = nothing passed the threshold, no LLM call;
    "model" = the model said the context does not answer). `grounded` is False for the
    model's own answer given when nothing passed the gate (`on_empty="model"`).
    `citations_inferred`: the model wrote no valid [n]; the citation is the passage that
    shares the answer's words (see `supporting_passage`)."""

    question: str
    text: str
    abstained: bool
    abstain_reason: str | None
    grounded: bool
    citations: tuple[Citation, ...]
    dropped_citations: tuple[int, ...]
    sources: tuple[Citation, ...]
    threshold: float | None
    model: str | None
    finish_reason: str | None
    usage: Usage
    citations_inferred: bool = False

    def to_json(self) -> dict[str, Any]:
        """The documented `ask --json` schema."""
        u = self.usage
        return {
            "question": self.question, "answer": self.text, "abstained": self.abstained,
            "abstain_reason": self.abstain_reason, "grounded": self.grounded,
            "citations": [citation_json(c) for c in self.citations],
            "citations_inferred": self.citations_inferred,
            "dropped_citations": list(self.dropped_citations),
            "sources": [citation_json(c) for c in self.sources],
            "threshold": self.threshold, "model": self.model, "finish_reason": self.finish_reason,
            "usage": {
                "embedding_tokens": u.embedding_tokens, "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "seconds": {"embed": round(u.embed_s, 4), "retrieve": round(u.retrieve_s, 4),
                            "generate": round(u.generate_s, 4), "total": round(u.total_s, 4)},
            },
        }


def _citation(n: int, hit: Hit) -> Citation:
    return Citation(n, hit.chunk_id, hit.source, hit.heading, hit.title, hit.similarity, hit.text)


def citation_json(c: Citation) -> dict[str, Any]:
    return {"n": c.n, "chunk_id": c.chunk_id, "source": c.source, "heading": c.heading,
            "title": c.title, "similarity": round(c.similarity, 4), "text": c.text}


def retrieve_context(kb: KnowledgeBase, question: str, *, k: int = CONTEXT_K,
                     mode: str = "hybrid",
                     min_score: float | None = None) -> Context:
    """Embed, search and gate: no hit at or above the threshold means no context at all.
    `min_score=None` uses the KB's calibrated threshold (no gate when uncalibrated)."""
    if not question.strip():
        raise InputError("the question is empty: ask something, e.g. ragortune ask \"How do I ...?\"")
    threshold = kb.settings.min_score if min_score is None else min_score
    embedder = kb.embedder  # loads the model on first use: not part of the embed stage's time
    started = time.perf_counter()
    vector = kb.embed_query(question)
    embedded = time.perf_counter()
    hits = search(kb, question, k=k, mode=mode, min_score=None, query_vector=vector)
    # The threshold decides whether the KB answers at all; it does not thin the context:
    # with SmolLM2, keeping all top-k put the gold answer in 22/30 demo answers, thinning 20/30.
    if threshold is not None and not any(h.similarity >= threshold for h in hits):
        hits = []
    searched = time.perf_counter()
    tokens = embedder.count_tokens([question])[0]
    usage = Usage(embedding_tokens=tokens, embed_s=embedded - started, retrieve_s=searched - embedded)
    return Context(question, tuple(hits), threshold, usage)


def messages_for(context: Context, on_empty: OnEmpty = "abstain") -> list[Message] | None:
    """The prompt for this context; None means abstain without calling the LLM."""
    if on_empty not in ON_EMPTY:
        raise InputError(f"unknown on-empty policy '{on_empty}': use abstain or model")
    if context.hits:
        return rag_messages(context.question, context.passages())
    return fallback_messages(context.question) if on_empty == "model" else None


def finish(context: Context, completion: Completion | None, generate_s: float) -> Answer:
    """Turn the model's text into an `Answer`: map [n] to chunks, drop the ones that match none."""
    usage = Usage(context.usage.embedding_tokens,
                  completion.prompt_tokens if completion else 0,
                  completion.completion_tokens if completion else 0,
                  context.usage.embed_s, context.usage.retrieve_s, generate_s)
    base = {"question": context.question, "threshold": context.threshold, "usage": usage,
                "sources": context.sources(), "model": completion.model if completion else None,
                "finish_reason": completion.finish_reason if completion else None}
    if completion is None:
        return Answer(text=NOT_IN_KB, abstained=True, abstain_reason="gate", grounded=False,
                      citations=(), dropped_citations=(), **base)
    if not context.hits:
        return Answer(text=FALLBACK_MARK + completion.text, abstained=False, abstain_reason=None,
                      grounded=False, citations=(), dropped_citations=(), **base)
    text, cited, dropped = map_citations(_end_sentence(completion.text), len(context.hits))
    if is_abstention(text):  # the model's own "not in the knowledge base" or a variant
        return Answer(text=NOT_IN_KB, abstained=True, abstain_reason="model", grounded=False,
                      citations=(), dropped_citations=dropped, **base)
    inferred = not cited
    if inferred:
        cited = supporting_passage(text, context)
    citations = tuple(base["sources"][n - 1] for n in cited)
    return Answer(text=text, abstained=False, abstain_reason=None, grounded=True,
                  citations=citations, citations_inferred=inferred and bool(cited),
                  dropped_citations=dropped, **base)


def _end_sentence(text: str) -> str:
    """The ". " stop string removes the sentence's full stop; put it back."""
    return text + "." if text and text[-1].isalnum() else text


def map_citations(text: str, n_passages: int) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """(text without invalid markers, valid numbers in order of first use, dropped numbers)."""
    cited: list[int] = []
    dropped: list[int] = []

    def keep(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= n_passages]
        cited.extend(n for n in valid if n not in cited)
        dropped.extend(n for n in numbers if n not in valid and n not in dropped)
        return "[" + ", ".join(map(str, valid)) + "]" if valid else ""

    cleaned = _CITE.sub(keep, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return cleaned, tuple(cited), tuple(dropped)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def supporting_passage(text: str, context: Context) -> tuple[int, ...]:
    """The passage sharing most of the answer's words that the question lacks (rank breaks ties).

    Small models often answer correctly without writing [n]; this keeps every grounded answer
    traceable to a source, and `citations_inferred` tells the caller it was inferred."""
    distinctive = _words(text) - _words(context.question)
    if not distinctive:
        return ()
    overlap = [len(distinctive & _words(hit.text)) for hit in context.hits]
    best = max(range(len(overlap)), key=lambda i: (overlap[i], -i))
    return (best + 1,) if overlap[best] > 0 else ()


def needs_llm(context: Context, on_empty: OnEmpty = "abstain") -> bool:
    """False when the answer is a gated abstention: callers can skip loading a model at all."""
    return messages_for(context, on_empty) is not None


def generate(context: Context, llm: LLM | None, *, on_empty: OnEmpty = "abstain",
             max_tokens: int = MAX_TOKENS, stop: Sequence[str] = STOP) -> Answer:
    """Prompt the LLM with a retrieved context (or abstain without calling it)."""
    messages = messages_for(context, on_empty)
    if messages is None:
        return finish(context, None, 0.0)
    if llm is None:
        raise InputError("an LLM is needed to answer: pass --llm (default smollm2)")
    started = time.perf_counter()
    completion = llm.complete(messages, max_tokens=max_tokens, stop=list(stop))
    return finish(context, completion, time.perf_counter() - started)


def answer(kb: KnowledgeBase, llm: LLM | None, question: str, *, k: int = CONTEXT_K,
           mode: str = "hybrid",
           min_score: float | None = None, on_empty: OnEmpty = "abstain",
           max_tokens: int = MAX_TOKENS, stop: Sequence[str] = STOP) -> Answer:
    """Answer `question` from the KB; `llm` may be None when only gated abstention is possible."""
    context = retrieve_context(kb, question, k=k, mode=mode, min_score=min_score)
    return generate(context, llm, on_empty=on_empty, max_tokens=max_tokens, stop=stop)


def stream_answer(kb: KnowledgeBase, llm: LLM, question: str, *, k: int = CONTEXT_K,
                  mode: str = "hybrid",
                  min_score: float | None = None, on_empty: OnEmpty = "abstain",
                  max_tokens: int = MAX_TOKENS, stop: Sequence[str] = STOP,
                  ) -> Iterator[str | Answer]:
    """Like `answer`, yielding the model's text pieces first and the final `Answer` last.

    The pieces are raw model output; the final `Answer.text` is the cleaned, checked one."""
    context = retrieve_context(kb, question, k=k, mode=mode, min_score=min_score)
    messages = messages_for(context, on_empty)
    if messages is None:
        yield finish(context, None, 0.0)
        return
    started = time.perf_counter()
    if not context.hits:
        yield FALLBACK_MARK
    completion: Completion | None = None
    for event in llm.stream(messages, max_tokens=max_tokens, stop=list(stop)):
        if isinstance(event, Completion):
            completion = event
        else:
            yield event
    assert completion is not None, "LLM.stream must end with a Completion"
    yield finish(context, completion, time.perf_counter() - started)
