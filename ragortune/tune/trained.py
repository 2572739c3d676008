"""What a fine-tuned adapter was trained on, so that no evaluation scores it on its own training data.

`tune build` writes the record (key `trained` of `ragortune_build.json`, which `tune train`
copies into the adapter's `ragortune_train.json`): the fact ids it trained on, a hash of every
trained phrasing (normalised question text), the answer each fact was taught, the facts it
held out for validation and the paraphrase file it used. An evaluation then sorts each of its
questions into one of three kinds by comparing with the record:

- `seen`: this exact phrasing (after normalisation) was a training question;
- `unseen_phrasing`: the fact was trained, but never in this wording (knowledge injection);
- `unseen_fact`: the fact was never trained on (held out, or new).

Only unseen questions measure what the adapter learned rather than what it memorised.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragortune.errors import InputError
from ragortune.io import read_jsonl

RECORD_KEY = "trained"
SEEN, UNSEEN_PHRASING, UNSEEN_FACT = "seen", "unseen_phrasing", "unseen_fact"
EXPOSURES = (SEEN, UNSEEN_PHRASING, UNSEEN_FACT)
_NON_WORD = re.compile(r"[^\w]+")


def normalise_question(text: str) -> str:
    """Case, accents of width (NFKC), punctuation and spacing removed: two wordings that differ
    only there are the same phrasing, so a trailing '?' cannot make a trained question 'new'."""
    return " ".join(_NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())


def question_hash(text: str) -> str:
    """Stable 16-hex-digit hash of the normalised question (the record stores no raw text)."""
    return hashlib.sha256(normalise_question(text).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class TrainedOn:
    """The record of one build: what the adapter saw (see the module docstring)."""

    fact_ids: frozenset[str]
    question_hashes: frozenset[str]
    held_out_fact_ids: frozenset[str] = frozenset()
    answers: Mapping[str, str] | None = None  # fact id -> the answer it was taught
    paraphrases: int = 0  # reworded training questions beyond the originals
    original_wording: bool = True  # whether the source wording itself was trained on
    paraphrase_file: str | None = None

    def exposure(self, question_id: str, text: str) -> str:
        """`seen`, `unseen_phrasing` or `unseen_fact` for one evaluation question."""
        if question_hash(text) in self.question_hashes:
            return SEEN
        return UNSEEN_PHRASING if question_id in self.fact_ids else UNSEEN_FACT

    def to_dict(self) -> dict[str, Any]:
        return {"fact_ids": sorted(self.fact_ids), "question_hashes": sorted(self.question_hashes),
                "held_out_fact_ids": sorted(self.held_out_fact_ids),
                "answers": dict(sorted((self.answers or {}).items())),
                "paraphrases": self.paraphrases, "original_wording": self.original_wording,
                "paraphrase_file": self.paraphrase_file, "hash": "sha256-16 of normalised text"}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> TrainedOn:
        if not isinstance(data, dict):
            raise InputError(f"{where}: key '{RECORD_KEY}' must be an object; rebuild the data "
                             "with `ragortune tune build`")
        for key in ("fact_ids", "question_hashes"):
            value = data.get(key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{where}: key '{RECORD_KEY}.{key}' must be a list of strings; "
                                 "rebuild the data with `ragortune tune build`")
        return cls(
            fact_ids=frozenset(data["fact_ids"]), question_hashes=frozenset(data["question_hashes"]),
            held_out_fact_ids=frozenset(data.get("held_out_fact_ids") or ()),
            answers=dict(data.get("answers") or {}), paraphrases=int(data.get("paraphrases") or 0),
            original_wording=bool(data.get("original_wording", True)),
            paraphrase_file=data.get("paraphrase_file"),
        )


def record_training(
    trained: Iterable[tuple[str, str, str]],
    held_out: Iterable[tuple[str, str, str]] = (),
    *,
    original_wording: bool = True,
    paraphrase_file: str | None = None,
) -> TrainedOn:
    """The record of a build from its (fact id, question text, answer) training examples and
    held-out ones. Held-out phrasings are not 'seen': validation is not training."""
    trained = list(trained)
    fact_ids = {fid for fid, _, _ in trained}
    answers: dict[str, str] = {}
    for fid, _, answer in trained:
        answers.setdefault(fid, answer)
    n_originals = len(fact_ids) if original_wording else 0
    return TrainedOn(
        fact_ids=frozenset(fact_ids),
        question_hashes=frozenset(question_hash(text) for _, text, _ in trained),
        held_out_fact_ids=frozenset(fid for fid, _, _ in held_out) - fact_ids,
        answers=answers, paraphrases=max(0, len(trained) - n_originals),
        original_wording=original_wording, paraphrase_file=paraphrase_file,
    )


def exposures(questions: Iterable[tuple[str, str]], record: TrainedOn) -> dict[str, str]:
    """Question id -> `seen` / `unseen_phrasing` / `unseen_fact` for (id, text) pairs."""
    return {qid: record.exposure(qid, text) for qid, text in questions}


def read_paraphrases(path: str | Path,
                     question_ids: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Hand-written rewordings: JSONL of {"_id": question id, "paraphrases": [text, ...]}.
    Each carries the same fact as the question with that id and is trained with its answer.
    With `question_ids`, an id outside them is refused at its line (a typo would train nothing)."""
    path = Path(path)
    known = None if question_ids is None else set(question_ids)
    out: dict[str, list[str]] = {}
    for line, row in read_jsonl(path, "paraphrases file"):
        qid = row.get("_id") if isinstance(row, dict) else None
        if not isinstance(qid, str | int) or isinstance(qid, bool) or not str(qid).strip():
            raise InputError(f"{path}:{line}: field '_id': missing or not a string; give the id "
                             "of the question these paraphrases reword")
        texts = row.get("paraphrases")
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise InputError(f"{path}:{line}: field 'paraphrases': must be a list of non-empty "
                             'strings, e.g. "paraphrases": ["How much is ...?"]')
        if str(qid) in out:
            raise InputError(f"{path}:{line}: field '_id': duplicate id {qid!r}; merge the lines")
        if known is not None and str(qid) not in known:
            raise InputError(f"{path}:{line}: field '_id': paraphrases for unknown question id "
                             f"{qid!r}; fix the id to match the questions file")
        out[str(qid)] = [t.strip() for t in texts]
    return out


def check_paraphrases(paraphrases: Mapping[str, Sequence[str]], question_ids: Iterable[str],
                      where: str) -> None:
    """Paraphrases must name questions of the set they reword (a typo would train nothing)."""
    unknown = sorted(set(paraphrases) - set(question_ids))
    if unknown:
        raise InputError(f"{where}: paraphrases for unknown question ids {unknown[:5]}; fix the "
                         "ids to match the questions file")
