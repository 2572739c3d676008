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
    # greedy decoding: the shipped 135M model keeps 1 of its 2 pairs on these two documents
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kept"] >= 1
    assert data["kept"] + sum(data["dropped"].values()) == data["attempts"] <= 2
    chunks = {c.chunk_id: c.text for c in docs_kb.chunks()}
    for line in (tmp_path / "synth" / "queries.jsonl").read_text().splitlines():
        query = json.loads(line)
        source = chunks[query["metadata"]["chunk_id"]]
        assert contains_gold(source, query["answers"])
        assert not contains_gold(query["text"], query["answers"])


class ScriptedLLM:
    """An `LLM` that replies from a script keyed by a word of the passage: it makes the pair
    checks deterministic (what a real model writes varies; what the checks keep must not)."""

    name = "scripted"

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies

    def complete(self, messages, *, max_tokens=256, temperature=0.0, stop=None):
        from ragortune.generate.llm import Completion

        passage = messages[-1]["content"]
        text = next(r for key, r in self.replies.items() if key in passage)
        return Completion(text, 10, 5, self.name)


def test_synth_keeps_grounded_pairs_and_counts_each_dropped_kind(docs_kb) -> None:
    from ragortune.evaluate.synth import generate_pairs

    llm = ScriptedLLM({"$49": "Question: How much does the Pro plan cost per month?\nAnswer: $49",
                       "Lyon": "Question: Where is the office?\nAnswer: Paris"})
    result = generate_pairs(docs_kb, llm, 2)
    assert result.attempts == 2 and len(result.pairs) == 1
    assert result.pairs[0].question.answers == ("$49",)
    assert result.dropped["answer_not_in_chunk"] == 1  # Paris is not in the office chunk
    leaky = ScriptedLLM({"$49": "Question: Is the Pro plan $49?\nAnswer: $49",
                         "Lyon": "I cannot write a question."})
    result = generate_pairs(docs_kb, leaky, 2)
    assert result.pairs == [] and result.dropped["answer_in_question"] == 1
    assert result.dropped["unparsable"] == 1
