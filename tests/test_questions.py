"""One reader for every question file: BEIR queries, `synth` output, the plain files of `ask`,
`calibrate` and `eval`; a bad line is refused naming the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragortune.errors import InputError
from ragortune.questions import Question, read_questions


def write(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_every_format_gives_the_same_questions(tmp_path: Path) -> None:
    beir = write(tmp_path / "beir.jsonl", [
        {"_id": "q1", "text": "Where is the office?", "answers": ["Lyon"]},
        {"_id": "q2", "text": "Who is the CEO?", "answers": []},
        {"_id": "q3", "text": "Any news?"}])
    write(tmp_path / "synth" / "queries.jsonl", [
        {"_id": "q1", "text": "Where is the office?", "answers": ["Lyon"],
         "metadata": {"chunk_id": "c1", "doc_id": "d1", "source": "office.md"}}])
    other_tool = write(tmp_path / "qa.jsonl", [
        {"id": "q1", "question": " Where is the office? ", "answer": "Lyon "}])
    plain = write(tmp_path / "ask.jsonl", [{"text": "Where is the office?"}, ""])
    office = Question("q1", "Where is the office?", ("Lyon",))
    assert read_questions(beir) == [office, Question("q2", "Who is the CEO?", ()),
                                    Question("q3", "Any news?", None)]
    assert [q.answerable for q in read_questions(beir)] == [True, False, None]
    assert read_questions(tmp_path / "synth") == [office]  # a BEIR folder: its queries.jsonl
    assert read_questions(other_tool) == [office]
    assert read_questions(plain) == [Question("1", "Where is the office?")]  # id: line number


@pytest.mark.parametrize("line, field, words", [
    ("not json", None, "not valid JSON"),
    ('["a list"]', "line", "not an object"),
    ('{"_id": "q9"}', "text", "missing"),
    ('{"_id": "q9", "text": "  "}', "text", "empty question"),
    ('{"_id": "q9", "text": 5}', "text", "not a string"),
    ('{"_id": true, "text": "t?"}', "_id", "not a non-empty string"),
    ('{"_id": "q1", "text": "again?"}', "_id", "duplicate id 'q1' (first on line 1)"),
    ('{"_id": "q9", "text": "t?", "answers": "Paris"}', "answers", "not a list of strings"),
    ('{"_id": "q9", "text": "t?", "answers": ["a", 7]}', "answers", "not a list of strings"),
    ('{"_id": "q9", "text": "t?", "answers": [" "]}', "answers", "empty answer"),
])
def test_a_bad_line_is_refused_with_file_line_and_field(tmp_path: Path, line: str, field,
                                                        words: str) -> None:
    path = write(tmp_path / "q.jsonl", [{"_id": "q1", "text": "fine?", "answers": ["x"]}, line])
    with pytest.raises(InputError) as info:
        read_questions(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ")
    assert field is None or f"field '{field}'" in message
    assert words in message


def test_required_answers_and_ids_are_refused_when_missing(tmp_path: Path) -> None:
    path = write(tmp_path / "q.jsonl", [{"_id": "q1", "text": "t?", "answers": []},
                                        {"text": "no answers?"}])
    assert len(read_questions(path)) == 2
    with pytest.raises(InputError, match=r"q\.jsonl:2: field 'answers': missing"):
        read_questions(path, require_answers=True)
    with pytest.raises(InputError, match=r"q\.jsonl:2: field '_id': missing"):
        read_questions(path, require_id=True)


def test_a_missing_or_empty_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.jsonl: no such questions file"):
        read_questions(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match=r"empty\.jsonl: no questions"):
        read_questions(write(tmp_path / "empty.jsonl", ["", "  "]))


BAD = '{"_id": "q2", "text": "Where?", "answers": "Lyon"}'  # answers must be a list


def _bad_file(tmp_path: Path) -> Path:
    return write(tmp_path / "bad" / "queries.jsonl",
                 [{"_id": "q1", "text": "Office?", "answers": ["Lyon"]}, BAD])


@pytest.mark.parametrize("entry", ["eval dataset", "tune build", "ask", "calibrate",
                                   "eval answers", "eval update"])
def test_every_command_reads_questions_through_the_one_reader(tmp_path: Path, entry: str
                                                              ) -> None:
    """Each format's way in refuses the same bad line with the same file:line message."""
    from ragortune.cli import app
    from ragortune.evaluate.datasets import load_dataset

    bad = _bad_file(tmp_path)
    (bad.parent / "corpus.jsonl").write_text('{"_id": "d1", "text": "The office is in Lyon."}\n')
    kb = str(tmp_path / "no-kb")
    if entry == "eval dataset":  # a BEIR folder, e.g. what `ragortune synth` writes
        with pytest.raises(InputError) as info:
            load_dataset(bad.parent, split=None)
        message = str(info.value)
    else:
        args = {
            "tune build": ["tune", "build", str(bad.parent), "--out", str(tmp_path / "o")],
            "ask": ["ask", "--questions", str(bad), "--kb", kb],
            "calibrate": ["calibrate", "--questions", str(bad), "--kb", kb],
            "eval answers": ["eval", "answers", "--questions", str(bad), "--kb", kb,
                             "--arms", "rag"],
            "eval update": ["eval", "update", "--v1", str(bad.parent), "--v2", str(bad.parent),
                            "--questions-v1", str(bad), "--questions-v2", str(bad),
                            "--work", str(tmp_path / "w")],
        }[entry]
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, InputError), result.output
        message = str(result.exception)
    assert message.startswith(f"{bad}:2: field 'answers': not a list of strings")
