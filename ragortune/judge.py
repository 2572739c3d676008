"""How an answer is judged: does it give a gold answer, does it decline to answer.

One copy for `ask` (its ✓ marks and score), the RAG answer (a model's own abstention) and the
evaluation (accuracy, abstention precision/recall). Normalisation is the SQuAD v1.1
evaluation script's: lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse
whitespace; a gold answer must appear as whole words ("40" does not match "400").
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence

from ragortune.questions import Question

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
    (r"\b(?:provided |given |the )?" + _SOURCE + r" " + _NEG
     + r" (?:contain|mention|include|provide|say|specify|state|cover|answer|have)"),
    (r"\b(?:is|are|was|were) not (?:mentioned|provided|stated|specified|found|given|available"
     r"|included|covered) in the (?:provided |given )?" + _SOURCE),
    r"\b(?:not|no) (?:enough|sufficient) (?:information|context|evidence)\b",
    r"\binsufficient (?:information|context|evidence)\b",
    r"\b(?:cannot|can't|can not|unable to|not able to) (?:answer|determine|find|tell)\b",
    r"\bthere (?:is|are) no (?:relevant )?(?:information|mention|details)\b",
    r"\bno (?:relevant )?information (?:about|on|regarding|in)\b",
    r"\bi(?: am|'m) not sure\b",
    (r"\bi (?:do not|don't) have (?:the ability|access|any information|enough information"
     r"|information)\b"),
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


def contains_gold(prediction: str, golds: Sequence[str]) -> bool:
    """True when a normalised gold answer appears as a whole-word span of the prediction."""
    pred = f" {normalize_answer(prediction)} "
    return any(g and f" {g} " in pred for g in (normalize_answer(x) for x in golds))


def matches_gold(prediction: str, golds: Sequence[str]) -> bool:
    """The answer's verdict: contains a gold answer, or, for a gold holding numbers, gives all
    of them ("40" answers "40 vehicles", "$59" answers "59 dollars"): the number is the fact.
    Whole words only: "400" does not give "40"."""
    pred = normalize_answer(prediction)
    tokens = set(pred.split())
    for gold in (normalize_answer(g) for g in golds):
        numbers = [t for t in gold.split() if any(ch.isdigit() for ch in t)]
        if (gold and f" {gold} " in f" {pred} ") or (numbers and tokens.issuperset(numbers)):
            return True
    return False


def strip_citations(text: str) -> str:
    """Remove `[1]`, `[2, 3]` markers the RAG prompt asks for: they are not part of the answer
    (and "[1]" would otherwise read as the number 1)."""
    return _CITATION.sub("", text)


def is_abstention(text: str) -> bool:
    """Whether an answer declines: empty, or its opening sentence says the sources lack it.

    Catches the RAG prompt's own phrase ("Not in the knowledge base.", also inside a sentence:
    "The answer is not in the knowledge base.") and the usual variants ("I don't know", "the
    context does not contain ...", "cannot answer ..."), after any opening apology.
    """
    flat = " ".join(text.replace("\u2019", "'").replace("\u2018", "'").lower().split())
    if not flat.strip(string.punctuation + " "):
        return True
    sentences = _SENTENCE_END.split(flat)
    while len(sentences) > 1 and _APOLOGY.match(sentences[0]):
        sentences = sentences[1:]
    return bool(_ABSTAIN.search(sentences[0]))


def verdict(prediction: str, answers: Sequence[str] | None,
            abstained: bool | None = None) -> bool | None:
    """Whether an answer is right: None for an unlabelled question; for an unanswerable one
    (no gold answers), that it declined; else that it gives a gold answer and does not decline.
    `abstained` is what the caller already knows (a gated RAG answer); None detects it."""
    text = strip_citations(prediction)
    if abstained is None:
        abstained = is_abstention(text)
    if answers is None:
        return None
    if not answers:
        return abstained
    return not abstained and matches_gold(text, answers)


def tally(results: Iterable[tuple[Question, str, bool]]) -> dict[str, int]:
    """The score of answers to (question, answer text, abstained): how many answerable
    questions got a right answer and how many unanswerable ones were declined."""
    counts = {"questions": 0, "answerable": 0, "answerable_correct": 0, "unanswerable": 0,
              "unanswerable_abstained": 0}
    for question, text, abstained in results:
        counts["questions"] += 1
        if question.answerable is None:
            continue
        kind = "answerable" if question.answerable else "unanswerable"
        counts[kind] += 1
        right = verdict(text, question.answers, abstained)
        counts["answerable_correct" if question.answerable else "unanswerable_abstained"] += \
            bool(right)
    return counts
