"""`ragortune synth`: pairs parsed from the model's reply, checked against their chunk, written
as a BEIR folder that the evaluation and the fine-tuning dataset builder both read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragortune.evaluate.datasets import load_dataset
from ragortune.evaluate.synth import Pair, SynthResult, parse_pair, write_beir
from ragortune.judge import contains_gold
from ragortune.questions import Question, read_questions

DOCS = {"pricing.md": "# Pricing\n\nThe Pro plan costs $49 per month.\n",
        "office.md": "# Office\n\nThe office is in Lyon, next to the river.\n"}


@pytest.fixture
def docs_kb(tmp_path: Path, embedder):
    from ragortune.kb import open_kb
    from ragortune.kb.sync import sync

    (tmp_path / "docs").mkdir()
    for name, text in DOCS.items():
        (tmp_path / "docs" / name).write_text(text)
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    sync(kb, [tmp_path / "docs"])
    return kb


@pytest.mark.parametrize("reply, expected", [
    ("Question: Where is the office?\nAnswer: Lyon.", ("Where is the office?", "Lyon")),
    ('question: "What does Pro cost?"\n answer: "$49"', ("What does Pro cost?", "$49")),
    ("Sure! Question: Where?\nAnswer: in Lyon", ("Where?", "in Lyon")),
    ("The office is in Lyon.", None),
    ("Question: Where is the office?", None),
])
def test_pairs_are_parsed_from_the_reply(reply: str, expected) -> None:
    assert parse_pair(reply) == expected


def test_written_folder_loads_for_eval_and_for_fine_tuning(tmp_path: Path, docs_kb) -> None:
    chunk = next(c for c in docs_kb.chunks() if "Lyon" in c.text)
    question = Question("synth-0001", "Where is the office?", ("Lyon",))
    result = SynthResult([Pair(question, chunk.chunk_id, chunk.doc_id, chunk.source)],
                         attempts=1)
    write_beir(tmp_path / "out", docs_kb, result)
    data = load_dataset(tmp_path / "out")
    assert data.corpus_size == len(docs_kb.chunks()) == 2
    assert data.qrels == {"synth-0001": {chunk.chunk_id: 1}}
    assert data.queries["synth-0001"] == question
    # the fine-tuning builder reads the same folder through the same reader
    assert read_questions(tmp_path / "out", require_answers=True) == [question]


def test_synth_with_smollm2_keeps_only_pairs_grounded_in_their_chunk(tmp_path: Path, docs_kb,
                                                                     monkeypatch) -> None:
    from ragortune.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["synth", "--kb", str(docs_kb.path), "--n", "2", "--out",
                                      "synth", "--json"])
    if result.exit_code != 0:  # the 135M model may fail every check; that must be a clear error
        assert "no pair survived the checks" in str(result.exception)
        return
    data = json.loads(result.stdout)
    assert data["kept"] + sum(data["dropped"].values()) == data["attempts"] <= 2
    chunks = {c.chunk_id: c.text for c in docs_kb.chunks()}
    for line in (tmp_path / "synth" / "queries.jsonl").read_text().splitlines():
        query = json.loads(line)
        source = chunks[query["metadata"]["chunk_id"]]
        assert contains_gold(source, query["answers"])
        assert not contains_gold(query["text"], query["answers"])
