"""Answer metrics: SQuAD exact match and token F1, abstention precision/recall, latency
percentiles.

Normalisation, the gold matcher and the abstention detector live in `ragortune.judge`
(the same ones `ask` uses). Scores take the best gold answer. For an unanswerable question
(no gold answers) every score is 1 when the answer abstains and 0 otherwise, as SQuAD v2
scores "no answer".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ragortune.judge import (
    contains_gold,
    is_abstention,
    normalize_answer,
    strip_citations,
    verdict,
)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Best bag-of-tokens F1 against the gold answers (SQuAD)."""
    pred_tokens = normalize_answer(prediction).split()
    return max((_f1(pred_tokens, normalize_answer(g).split()) for g in golds), default=0.0)


def _f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        return float(pred == gold)
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class AnswerScore:
    """Scores of one answer; None where the question has no answer labels."""

    exact_match: float | None
    f1: float | None
    contains_gold: bool | None
    abstained: bool
    correct: bool | None = None  # judge.verdict: what accuracy counts


def score_answer(prediction: str, answers: Sequence[str] | None) -> AnswerScore:
    """Score one answer against its golds: None = unlabelled, empty = unanswerable.

    Citation markers (`[1]`) are removed first: they are not part of the answer.
    """
    prediction = strip_citations(prediction)
    abstained = is_abstention(prediction)
    correct = verdict(prediction, answers, abstained)
    if answers is None:
        return AnswerScore(None, None, None, abstained)
    if len(answers) == 0:
        return AnswerScore(float(abstained), float(abstained), abstained, abstained, correct)
    return AnswerScore(exact_match(prediction, answers), token_f1(prediction, answers),
                       contains_gold(prediction, answers), abstained, correct)


def abstention_scores(
    abstained: Sequence[bool], answerable: Sequence[bool]
) -> dict[str, float | None]:
    """Precision and recall of abstaining, where the right abstentions are the unanswerable.

    precision = abstained on unanswerable / all abstentions (None when none);
    recall = abstained on unanswerable / all unanswerable (None when there are none).
    """
    said_no = np.asarray(abstained, dtype=bool)
    unanswerable = ~np.asarray(answerable, dtype=bool)
    if said_no.shape != unanswerable.shape:
        raise ValueError("abstained and answerable must have the same length")
    right = int(np.count_nonzero(said_no & unanswerable))
    n_said, n_unans = int(said_no.sum()), int(unanswerable.sum())
    return {
        "precision": right / n_said if n_said else None,
        "recall": right / n_unans if n_unans else None,
        "abstained": n_said,
        "unanswerable": n_unans,
    }


def percentiles(values: Sequence[float], qs: Sequence[int] = (50, 95)) -> dict[str, float | None]:
    """`{"p50": ..., "p95": ...}` with linear interpolation (numpy's default); None if empty."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {f"p{q}": None for q in qs}
    return {f"p{q}": float(v) for q, v in zip(qs, np.percentile(arr, qs), strict=True)}
