"""Questions, and the one reader for every question file the product takes.

The files are JSON Lines, one question an object: BEIR `queries.jsonl` (`_id`, `text`,
optional `answers`), the `queries.jsonl` that `ragortune synth` writes (the same, plus
`metadata`), and the plain files of `ask`, `calibrate` and `eval` (`text`, optional `_id` and
`answers`). `question`/`query` are read as `text`, `id` as `_id`, and a single `answer` string
as `answers: [answer]`, so question/answer files made by other tools load as they are.

Decisions a caller must know:
- `answers` absent (or null) means "not labelled"; an empty list marks an unanswerable question.
- Without an `_id` a question is named by its line number; ids are unique within a file.
- Every bad line is an `InputError` "FILE:LINE: field 'F': problem; fix".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragortune.errors import InputError
from ragortune.io import read_jsonl

TEXT_KEYS = ("text", "question", "query")
ID_KEYS = ("_id", "id")


@dataclass(frozen=True)
class Question:
    """One question; `answers` is None without labels and () when it is unanswerable."""

    id: str
    text: str
    answers: tuple[str, ...] | None = None

    @property
    def answerable(self) -> bool | None:
        """True/False when labelled, None when the question carries no answers."""
        return None if self.answers is None else len(self.answers) > 0


def read_questions(source: str | Path, *, require_answers: bool = False,
                   require_id: bool = False) -> list[Question]:
    """The questions of a JSONL file (or of a BEIR folder's `queries.jsonl`), in file order.

    `require_answers`: every question must carry `answers` (calibration, fine-tuning data);
    `require_id`: every question must carry an `_id` (BEIR queries, which qrels point at)."""
    path = Path(source)
    if path.is_dir():
        path = path / "queries.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: no such questions file; give a JSONL file of questions "
                         "(or a BEIR folder with queries.jsonl)")
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for line, row in read_jsonl(path, "questions file"):
        if not isinstance(row, dict):
            raise field_error(path, line, "line", f"a JSON {type(row).__name__}, not an object",
                              'write one JSON object per line, e.g. {"_id": "q1", "text": "..."}')
        qid = record_id(row, path, line, require_id)
        if qid in seen:
            raise field_error(path, line, "_id", f"duplicate id {qid!r} (first on line "
                              f"{seen[qid]})", "give every question a unique `_id`")
        seen[qid] = line
        answers = _answers(row, path, line)
        if answers is None and require_answers:
            raise field_error(path, line, "answers", "missing",
                              'add the reference answers, e.g. "answers": ["Paris"] ([] marks '
                              "an unanswerable question), or make them with `ragortune synth`")
        questions.append(Question(qid, _text(row, path, line), answers))
    if not questions:
        raise InputError(f"{path}: no questions; write one JSON object per line with the "
                         'question in `text`, e.g. {"_id": "q1", "text": "...", "answers": [...]}')
    return questions


def field_error(path: Path, line: int, field: str, problem: str, fix: str) -> InputError:
    """The message every line-level error of an input file carries."""
    return InputError(f"{path}:{line}: field '{field}': {problem}; {fix}")


def record_id(row: dict[str, Any], path: Path, line: int, required: bool) -> str:
    """A line's `_id` (or `id`) as a string; its line number when absent and not required."""
    key = next((k for k in ID_KEYS if k in row), None)
    if key is None:
        if required:
            raise field_error(path, line, "_id", "missing", "add a string `_id`")
        return str(line)
    value = row[key]
    # bool is an int subclass; an id of `true` is a mistake, not the id "True".
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise field_error(path, line, key, f"{value!r} is not a non-empty string",
                          "use a string (or integer) id")
    return str(value)


def _text(row: dict[str, Any], path: Path, line: int) -> str:
    key = next((k for k in TEXT_KEYS if k in row), None)
    if key is None or row[key] is None:
        raise field_error(path, line, "text", "missing", "write the question in `text`")
    value = row[key]
    if not isinstance(value, str):
        raise field_error(path, line, key, f"a {type(value).__name__}, not a string",
                          f"make `{key}` a string")
    if not value.strip():
        raise field_error(path, line, key, "empty question", "write the question text")
    return value.strip()


def _answers(row: dict[str, Any], path: Path, line: int) -> tuple[str, ...] | None:
    if row.get("answers") is not None:
        key, value = "answers", row["answers"]
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise field_error(path, line, key, "not a list of strings",
                              'write e.g. "answers": ["Paris"], or [] for an unanswerable '
                              "question")
    elif row.get("answer") is not None:
        key, value = "answer", row["answer"]
        if not isinstance(value, str):
            raise field_error(path, line, key, f"a {type(value).__name__}, not a string",
                              'write e.g. "answer": "Paris", or "answers": [] for an '
                              "unanswerable question")
        value = [value]
    else:
        return None
    if any(not a.strip() for a in value):
        raise field_error(path, line, key, "contains an empty answer",
                          'remove it; use "answers": [] to mark an unanswerable question')
    return tuple(a.strip() for a in value)
