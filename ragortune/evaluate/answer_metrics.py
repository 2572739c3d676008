"""Answer metrics: SQuAD exact match and token F1, contains-gold, abstention, latency percentiles.

Normalisation is the SQuAD v1.1 evaluation script's: lower-case, drop ASCII punctuation,
drop the articles a/an/the, collapse whitespace. Scores take the best gold answer.
For an unanswerable question (no gold answers) every score is 1 when the answer abstains
and 0 otherwise, as SQuAD v2 scores "no answer".
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ABSTENTION_PHRASE = "not in the knowledge base"

_PUNCT_TABLE = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NEG = r"(?:does not|doesn't|do not|don't|did not|didn't)"
_SOURCE = (r"(?:knowledge base|context|contexts|documents?|sources?|passages?|excerpts?"
           r"|information provided|provided information|text)")
# Phrases a model uses when it declines; matched in the opening sentence only, so a
# real answer that adds "the context does not mention X" later still counts as an answer.
_ABSTAIN = re.compile("|".join([
    r"\bnot in the (?:provided |given )?" + _SOURCE,
    r"\bi (?:do not|don't|dont|cannot|can't) know\b",
    r"\b(?:provided |given |the )?" + _SOURCE + r" " + _NEG
    + r" (?:contain|mention|include|provide|say|specify|state|cover|answer|have)",
    r"\b(?:is|are|was|were) not (?:mentioned|provided|stated|specified|found|given|available"
    r"|included|covered) in the (?:provided |given )?" + _SOURCE,
    r"\b(?:not|no) (?:enough|sufficient) (?:information|context|evidence)\b",
    r"\binsufficient (?:information|context|evidence)\b",
    r"\b(?:cannot|can't|can not|unable to|not able to) (?:answer|determine|find|tell)\b",
    r"\bthere (?:is|are) no (?:relevant )?(?:information|mention|details)\b",
    r"\bno (?:relevant )?information (?:about|on|regarding|in)\b",
    r"\bi(?: am|'m) not sure\b",
    r"\bi (?:do not|don't) have (?:the ability|access|any information|enough information"
    r"|information)\b",
    r"\bunanswerable\b",
    r"^no answer\b",
]))
_APOLOGY = re.compile(
    r"^(?:i'm |i am |we're )?(?:sorry|unfortunately|i apologi[sz]e)\b[^.!?]*[.!?,]?$"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCT_TABLE)
    return " ".join(_ARTICLES.sub(" ", text).split())


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


def contains_gold(prediction: str, golds: Sequence[str]) -> bool:
    """True when a normalised gold answer appears as a whole-word span of the prediction."""
    pred = f" {normalize_answer(prediction)} "
    return any(g and f" {g} " in pred for g in (normalize_answer(x) for x in golds))


def matches_gold(prediction: str, golds: Sequence[str]) -> bool:
    """The answer's verdict: contains a gold answer, or, for a gold holding numbers, gives all
    of them ("40" answers "40 vehicles", "$59" answers "59 dollars"): the number is the fact.
    """
    pred = normalize_answer(prediction)
    tokens = set(pred.split())
    for gold in (normalize_answer(g) for g in golds):
        numbers = [t for t in gold.split() if any(ch.isdigit() for ch in t)]
        if (gold and f" {gold} " in f" {pred} ") or (numbers and tokens.issuperset(numbers)):
            return True
    return False


def strip_citations(text: str) -> str:
    """Remove `[1]`, `[2, 3]` markers the RAG prompt asks for, so they do not count as tokens."""
    return _CITATION.sub("", text)


def is_abstention(text: str) -> bool:
    """Whether an answer declines: empty, or its opening sentence says the sources lack it.

    Catches the RAG arm's own phrase ("not in the knowledge base") and the usual variants
    ("I don't know", "the context does not contain ...", "cannot answer ...").
    """
    flat = " ".join(text.replace("\u2019", "'").replace("\u2018", "'").lower().split())
    if not flat.strip(string.punctuation + " "):
        return True
    sentences = _SENTENCE_END.split(flat)
    while len(sentences) > 1 and _APOLOGY.match(sentences[0]):
        sentences = sentences[1:]
    return bool(_ABSTAIN.search(sentences[0]))


@dataclass(frozen=True)
class AnswerScore:
    """Scores of one answer; None where the question has no answer labels."""

    exact_match: float | None
    f1: float | None
    contains_gold: bool | None
    abstained: bool
    correct: bool | None = None  # matches_gold: what accuracy counts


def score_answer(prediction: str, answers: Sequence[str] | None) -> AnswerScore:
    """Score one answer against its golds: None = unlabelled, empty = unanswerable.

    Citation markers (`[1]`) are removed first: they are not part of the answer.
    """
    prediction = strip_citations(prediction)
    abstained = is_abstention(prediction)
    if answers is None:
        return AnswerScore(None, None, None, abstained)
    if len(answers) == 0:
        return AnswerScore(float(abstained), float(abstained), abstained, abstained, abstained)
    return AnswerScore(exact_match(prediction, answers), token_f1(prediction, answers),
                       contains_gold(prediction, answers), abstained,
                       matches_gold(prediction, answers) and not abstained)


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
