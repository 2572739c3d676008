"""The arms side by side: each labelled question answered by every arm, scored, summarised.

An arm is a model with or without retrieval. `base` is the model alone, `rag` the same model
over the KB; `ft` and `hybrid` are the same two with a LoRA adapter. The table `ARM_KINDS`
is all that distinguishes them, so a new arm is a new row, not a change to the runner.
Closed-book arms (base, ft) are asked with `CLOSED_BOOK_SYSTEM` as the system prompt: build
fine-tuning data with the same `--system` and the ft arm is asked the way it was taught.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ragortune import rag
from ragortune.errors import InputError
from ragortune.evaluate.answer_metrics import abstention_scores, percentiles, score_answer
from ragortune.generate.llm import LLM, Message
from ragortune.judge import matches_gold
from ragortune.kb import KnowledgeBase
from ragortune.questions import Question

# name -> (uses retrieval, needs the fine-tuned adapter)
ARM_KINDS: dict[str, tuple[bool, bool]] = {
    "base": (False, False), "rag": (True, False), "ft": (False, True), "hybrid": (True, True),
}
CLOSED_BOOK_SYSTEM = "Answer in one short sentence. If you do not know, reply: I don't know."

AnswerProgress = Callable[[str, int, int], None]  # arm, questions done, questions total


@dataclass(frozen=True)
class Arm:
    name: str
    retrieval: bool
    llm: LLM | None  # None only where every answer is a gated abstention (no model call)
    adapter: str | None = None


def parse_arms(spec: str) -> list[str]:
    """`"base,rag"` -> ["base", "rag"], checked against `ARM_KINDS`."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in ARM_KINDS]
    if not names or unknown:
        raise InputError(f"--arms {spec!r}: use a comma-separated list of "
                         f"{', '.join(ARM_KINDS)}")
    return list(dict.fromkeys(names))


def make_arms(names: Sequence[str], load: Callable[[str | None], LLM],
              adapter: str | None = None) -> list[Arm]:
    """Build the arms; `load(adapter)` loads a model once per distinct adapter (None = base)."""
    models: dict[str | None, LLM] = {}
    arms = []
    for name in names:
        retrieval, tuned = ARM_KINDS[name]
        if tuned and adapter is None:
            raise InputError(f"arm '{name}' answers with a fine-tuned model: pass --adapter DIR "
                             "(a LoRA adapter from `ragortune tune train`)")
        key = adapter if tuned else None
        if key not in models:
            models[key] = load(key)
        arms.append(Arm(name, retrieval, models[key], key))
    return arms


@dataclass(frozen=True)
class ArmAnswer:
    """One arm's answer to one question, with its scores and what it cost."""

    arm: str
    query_id: str
    question: str
    answer: str
    answerable: bool | None
    exact_match: float | None
    f1: float | None
    contains_gold: bool | None
    correct: bool | None  # judge.verdict, counted by accuracy
    abstained: bool
    cited_docs: tuple[str, ...]
    citation_supported: bool | None  # None: no retrieval, abstained, or no gold answer
    embedding_tokens: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "cited_docs": list(self.cited_docs)}


def labelled_questions(queries: Sequence[Question]) -> list[Question]:
    """The questions that carry `answers`; none at all is an error worth raising early."""
    labelled = [q for q in queries if q.answers is not None]
    if not labelled:
        raise InputError("no question carries `answers`: add them (an empty list marks an "
                         "unanswerable question) or generate some with `ragortune synth`")
    return labelled


def closed_book_messages(question: str) -> list[Message]:
    """The prompt of the arms without retrieval: the instruction as system prompt (what
    `tune build --system` puts in training data), the bare question as the user turn."""
    return [{"role": "system", "content": CLOSED_BOOK_SYSTEM},
            {"role": "user", "content": question.strip()}]


def answer_one(arm: Arm, query: Question, kb: KnowledgeBase | None, *, k: int, mode: str,
               min_score: float | None, max_tokens: int,
               relevant: Mapping[str, int] | None = None) -> ArmAnswer:
    """Ask one arm one question; a RAG answer's citation is supported when a cited chunk holds
    a gold answer or belongs to a document the qrels judge relevant."""
    cited: list[Any] = []
    if arm.retrieval:
        if kb is None:
            raise InputError(f"arm '{arm.name}' needs a knowledge base")
        context = rag.retrieve_context(kb, query.text, k=k, mode=mode, min_score=min_score)
        result = rag.generate(context, arm.llm, max_tokens=max_tokens)
        cited = [context.hits[c.n - 1] for c in result.citations]
        text, gated, usage = result.text, result.abstained, result.usage
        tokens = (usage.embedding_tokens, usage.prompt_tokens, usage.completion_tokens)
        latency = usage.total_s * 1000
    else:
        if arm.llm is None:
            raise InputError(f"arm '{arm.name}' needs a model: pass --llm")
        started = time.perf_counter()
        # one sentence, as the RAG arms: the same stop keeps the comparison fair and fast
        completion = arm.llm.complete(closed_book_messages(query.text), max_tokens=max_tokens,
                                      stop=list(rag.STOP))
        latency = (time.perf_counter() - started) * 1000
        text, gated = completion.text, False
        tokens = (0, completion.prompt_tokens, completion.completion_tokens)
    score = score_answer(text, query.answers)
    abstained = gated or score.abstained
    supported = None
    if arm.retrieval and not abstained and query.answerable:
        supported = any(matches_gold(hit.text, query.answers or ())
                        or (relevant or {}).get(hit.doc_id, 0) >= 1 for hit in cited)
    return ArmAnswer(arm.name, query.id, query.text, text, query.answerable,
                     score.exact_match, score.f1, score.contains_gold, score.correct, abstained,
                     tuple(dict.fromkeys(hit.doc_id for hit in cited)), supported, *tokens,
                     latency)


def run_arms(arms: Sequence[Arm], queries: Sequence[Question], kb: KnowledgeBase | None, *,
             k: int = 5, mode: str = "hybrid", min_score: float | None = None,
             max_tokens: int = rag.MAX_TOKENS, qrels: Mapping[str, Mapping[str, int]] | None = None,
             on_progress: AnswerProgress | None = None) -> list[ArmAnswer]:
    """Every labelled question through every arm, arm by arm (one model warm at a time)."""
    labelled = labelled_questions(queries)
    out = []
    for arm in arms:
        for i, query in enumerate(labelled, start=1):
            out.append(answer_one(arm, query, kb, k=k, mode=mode, min_score=min_score,
                                  max_tokens=max_tokens,
                                  relevant=(qrels or {}).get(query.id)))
            if on_progress:
                on_progress(arm.name, i, len(labelled))
    return out


def _mean(values: Sequence[float | bool | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarise(answers: Sequence[ArmAnswer]) -> dict[str, dict[str, Any]]:
    """Per arm: accuracy (`judge.verdict` on answerable questions), EM, F1, abstention
    precision/recall, citation support, latency p50/p95 and mean tokens per query."""
    out: dict[str, dict[str, Any]] = {}
    for arm in dict.fromkeys(a.arm for a in answers):
        rows = [a for a in answers if a.arm == arm]
        answerable = [a for a in rows if a.answerable]
        labelled = [a for a in rows if a.answerable is not None]
        abstention = abstention_scores([a.abstained for a in labelled],
                                       [bool(a.answerable) for a in labelled])
        supported = [a.citation_supported for a in rows if a.citation_supported is not None]
        out[arm] = {
            "accuracy": _mean([a.correct for a in answerable]),
            "contains_gold": _mean([a.contains_gold for a in answerable]),
            "exact_match": _mean([a.exact_match for a in answerable]),
            "f1": _mean([a.f1 for a in answerable]),
            "answered_rate": _mean([not a.abstained for a in answerable]),
            "abstention": {"precision": abstention["precision"], "recall": abstention["recall"]},
            "citation_support_rate": _mean(supported),
            "latency_ms": percentiles([a.latency_ms for a in rows]),
            "tokens_per_query": {
                "embedding": _mean([a.embedding_tokens for a in rows]),
                "prompt": _mean([a.prompt_tokens for a in rows]),
                "completion": _mean([a.completion_tokens for a in rows]),
            },
            "questions": len(rows),
            "answerable": len(answerable),
            "unanswerable": len(labelled) - len(answerable),
        }
    return out
