"""Measure the similarity threshold that separates answerable from unanswerable questions.

Each labelled question gets the best cosine similarity among its top-k hits (the number the
gate in `rag/answer.py` compares with the threshold). A question abstains when that score is below the
threshold; abstention is the positive class, so precision = abstentions that were right and
recall = unanswerable questions that abstained. The chosen threshold maximises balanced
accuracy (Youden's J), so a set with few unanswerable questions still weighs them fairly,
and sits in the middle of the widest gap among equally good ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ragortune.errors import InputError
from ragortune.kb import KnowledgeBase
from ragortune.questions import Question
from ragortune.rag.answer import CONTEXT_K
from ragortune.retrieve import search

REPORTED = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8)


@dataclass(frozen=True)
class Operating:
    """Abstention quality at one threshold."""

    threshold: float
    precision: float
    recall: float
    f1: float
    answered_recall: float  # answerable questions that were let through
    abstained: int


@dataclass(frozen=True)
class Calibration:
    threshold: float
    chosen: Operating
    others: tuple[Operating, ...]
    scores: tuple[tuple[str, float, bool], ...]  # (_id, best similarity, answerable)
    k: int
    mode: str

    def to_json(self) -> dict[str, Any]:
        """The documented `calibrate --json` schema."""
        n_ans = sum(1 for _, _, a in self.scores if a)
        return {
            "threshold": round(self.threshold, 4), "k": self.k, "mode": self.mode,
            "questions": len(self.scores), "answerable": n_ans,
            "unanswerable": len(self.scores) - n_ans,
            "chosen": _op_json(self.chosen), "others": [_op_json(o) for o in self.others],
            "scores": [{"_id": q, "score": round(s, 4), "answerable": a} for q, s, a in self.scores],
        }


def _op_json(op: Operating) -> dict[str, Any]:
    return {"threshold": round(op.threshold, 4), "precision": round(op.precision, 4),
            "recall": round(op.recall, 4), "f1": round(op.f1, 4),
            "answered_recall": round(op.answered_recall, 4), "abstained": op.abstained}


def best_similarities(kb: KnowledgeBase, questions: list[Question], *,
                      k: int = CONTEXT_K,
                      mode: str = "hybrid") -> np.ndarray:
    """Best similarity among each question's top-k hits (no threshold), -1 when nothing is found."""
    vectors = kb.embedder.embed([q.text for q in questions])
    best = np.full(len(questions), -1.0)
    for i, (q, vector) in enumerate(zip(questions, vectors)):
        hits = search(kb, q.text, k=k, mode=mode, min_score=None, query_vector=vector)
        if hits:
            best[i] = max(h.similarity for h in hits)
    return best


def operating_points(scores: np.ndarray, answerable: np.ndarray,
                     thresholds: np.ndarray) -> list[Operating]:
    """Precision/recall of abstention (score < threshold) at each threshold, vectorised."""
    abstain = scores[None, :] < thresholds[:, None]
    unans = ~answerable
    true_pos = (abstain & unans).sum(axis=1)
    n_abstain = abstain.sum(axis=1)
    precision = np.divide(true_pos, n_abstain, out=np.ones(len(thresholds)), where=n_abstain > 0)
    recall = true_pos / max(int(unans.sum()), 1)
    f1 = np.divide(2 * precision * recall, precision + recall,
                   out=np.zeros(len(thresholds)), where=(precision + recall) > 0)
    let_through = (~abstain & answerable).sum(axis=1) / max(int(answerable.sum()), 1)
    return [Operating(float(t), float(p), float(r), float(f), float(a), int(n))
            for t, p, r, f, a, n in zip(thresholds, precision, recall, f1, let_through, n_abstain)]


def choose_threshold(scores: np.ndarray, answerable: np.ndarray) -> float:
    """Midpoint threshold with the best balanced accuracy; widest gap among ties."""
    if answerable.all() or not answerable.any():
        raise InputError(
            "calibration needs both answerable and unanswerable questions "
            "(add some with \"answers\": [] that the documents do not answer)")
    cuts = np.unique(scores)
    candidates = np.concatenate([[cuts[0] - 0.01], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 0.01]])
    abstain = scores[None, :] < candidates[:, None]
    j = (abstain & ~answerable).sum(1) / (~answerable).sum() + \
        (~abstain & answerable).sum(1) / answerable.sum()
    best = np.flatnonzero(np.isclose(j, j.max()))
    gaps = np.min(np.abs(scores[None, :] - candidates[best][:, None]), axis=1)
    return float(candidates[best[int(np.argmax(gaps))]])


def calibrate(kb: KnowledgeBase, questions: list[Question], *,
              k: int = CONTEXT_K,
              mode: str = "hybrid") -> Calibration:
    """Measure the threshold on `questions`; does not change the KB (the caller may save it)."""
    if not questions:
        raise InputError("the questions file holds no questions")
    unlabelled = next((q for q in questions if q.answers is None), None)
    if unlabelled is not None:
        raise InputError(f"question {unlabelled.id!r} has no answers: calibration needs "
                         "labelled questions (\"answers\": [] marks an unanswerable one)")
    scores = best_similarities(kb, questions, k=k, mode=mode)
    answerable = np.array([bool(q.answerable) for q in questions])
    threshold = choose_threshold(scores, answerable)
    others = [t for t in REPORTED if not np.isclose(t, threshold)]
    points = operating_points(scores, answerable, np.array([threshold, *others]))
    return Calibration(threshold, points[0], tuple(points[1:]),
                       tuple((q.id, float(s), bool(q.answerable)) for q, s in zip(questions, scores)),
                       k, mode)
