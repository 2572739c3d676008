"""Threshold calibration on labelled questions, and the `calibrate` / `ask` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragortune.cli import app
from ragortune.errors import InputError
from ragortune.kb import KnowledgeBase, open_kb
from ragortune.questions import read_questions
from ragortune.rag.calibrate import calibrate, choose_threshold, operating_points

from .conftest import DATA

QUESTIONS = DATA / "questions.jsonl"


def test_threshold_sits_in_the_widest_gap_between_the_classes() -> None:
    scores = np.array([0.2, 0.3, 0.35, 0.6, 0.7, 0.8])
    answerable = np.array([False, False, False, True, True, True])
    assert choose_threshold(scores, answerable) == pytest.approx(0.475)


def test_overlapping_classes_get_the_best_balanced_accuracy() -> None:
    scores = np.array([0.1, 0.2, 0.55, 0.5, 0.6, 0.7, 0.8, 0.9])
    answerable = np.array([False, False, False, True, True, True, True, True])
    t = choose_threshold(scores, answerable)
    [op] = operating_points(scores, answerable, np.array([t]))
    assert 0.2 < t < 0.5 or 0.55 < t < 0.6
    assert op.recall >= 2 / 3 and op.answered_recall >= 0.8


def test_precision_and_recall_of_abstention_are_counted_on_unanswerable_questions() -> None:
    scores = np.array([0.1, 0.4, 0.5, 0.9])
    answerable = np.array([False, False, True, True])
    [op] = operating_points(scores, answerable, np.array([0.45]))
    assert (op.precision, op.recall, op.answered_recall, op.abstained) == (1.0, 1.0, 1.0, 2)
    [op] = operating_points(scores, answerable, np.array([0.6]))
    assert (op.precision, op.recall, op.answered_recall) == (2 / 3, 1.0, 0.5)


def test_calibration_on_a_small_labelled_set_separates_the_classes(small_kb: KnowledgeBase) -> None:
    result = calibrate(small_kb, read_questions(QUESTIONS, require_answers=True), k=5)
    assert 0.15 < result.threshold < 0.6
    assert result.chosen.precision == 1.0 and result.chosen.recall == 1.0
    assert result.chosen.answered_recall == 1.0
    data = result.to_json()
    assert (data["answerable"], data["unanswerable"]) == (8, 6) and len(data["others"]) >= 5


def test_calibrate_command_saves_the_threshold_and_ask_then_abstains_without_a_model(
        small_kb: KnowledgeBase) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["calibrate", "--questions", str(QUESTIONS), "--kb",
                              str(small_kb.path), "--save", "--json"])
    assert out.exit_code == 0, out.output
    saved = json.loads(out.stdout)["threshold"]
    reopened = open_kb(small_kb.path)
    assert reopened.settings.min_score == pytest.approx(saved, abs=1e-4)
    # An LLM spec that cannot load proves the gate answers before any model is loaded.
    out = runner.invoke(app, ["ask", "How many moons does Jupiter have?", "--kb",
                              str(small_kb.path), "--llm", "hf:/no/such/model", "--json"])
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert answer["abstained"] and answer["abstain_reason"] == "gate"
    assert answer["threshold"] == pytest.approx(saved, abs=1e-4)
    reopened.settings.min_score = None
    reopened.save_settings()


@pytest.mark.parametrize("line, message", [
    ('{"text": "q"}', "answers"),
    ('{"answers": []}', "text"),
    ("not json", "not valid JSON"),
])
def test_bad_question_lines_name_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "fine", "answers": ["x"]}\n' + line + "\n")
    with pytest.raises(InputError, match=rf"q.jsonl:2: .*{message}"):
        read_questions(path, require_answers=True)


def test_calibration_needs_both_kinds_of_question(small_kb: KnowledgeBase, tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "When do access tokens expire?", "answers": ["45 minutes"]}\n')
    with pytest.raises(InputError, match="unanswerable"):
        calibrate(small_kb, read_questions(path, require_answers=True))


def test_ask_marks_an_answer_right_only_when_it_gives_the_gold_number(
        small_kb: KnowledgeBase, tmp_path: Path) -> None:
    """The ✓ marks and score of `ask --questions` use the evaluation's gold matcher: the
    model's "300" answers a gold "300" and not a gold "30" (a bare substring test said yes)."""
    question = "How many requests per minute may an API key send?"
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"_id": "right", "text": question, "answers": ["300"]}) + "\n"
                    + json.dumps({"_id": "wrong", "text": question, "answers": ["30"]}) + "\n")
    out = CliRunner().invoke(app, ["ask", "--questions", str(path), "--kb", str(small_kb.path)])
    assert out.exit_code == 0, out.output
    marks = [line[0] for line in out.stdout.splitlines() if line[:1] in ("✓", "✗")]
    assert marks == ["✓", "✗"]
    assert "1/2 answerable questions" in out.stdout
