"""`decide` labels each reason by the side it weighs on: an accuracy gap within the noise is a
tie worth 0 points, shown as "neither", never as a reason against the recommendation."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "scenarios" / "latency-short-queries.toml"


def _evidence(path: Path, *, significant: bool) -> Path:
    """What `eval answers` writes: both arms' accuracy and their paired test."""
    path.write_text(json.dumps({
        "arms": {"rag": {"accuracy": {"value": 0.75, "n": 30, "split": "held-out"}},
                 "ft": {"accuracy": {"value": 0.55, "n": 30, "split": "held-out"}}},
        "retrieval": {"recall@10": 0.9, "mrr@10": 0.7},
        "comparisons": {"answers": [{"a": "rag", "b": "ft", "n": 30, "diff": 0.2,
                                     "p_value": 0.01 if significant else 0.31,
                                     "p_holm": 0.02 if significant else 0.42,
                                     "significant": significant, "method": "mcnemar-exact"}]}}))
    return path


def _accuracy_line(tmp_path: Path, monkeypatch, significant: bool) -> str:
    from ragortune.cli import app

    monkeypatch.chdir(tmp_path)
    evidence = _evidence(tmp_path / f"evidence-{significant}.json", significant=significant)
    result = CliRunner().invoke(app, ["decide", "--scenario", str(SCENARIO), "--evidence",
                                      str(evidence)], catch_exceptions=False,
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return next(line for line in result.stdout.splitlines() if "Measured accuracy" in line)


def test_a_tie_on_accuracy_is_shown_as_neither_side(tmp_path, monkeypatch):
    line = _accuracy_line(tmp_path, monkeypatch, significant=False)
    assert "(neither, +0.0)" in line and "treated as a tie" in line
    assert "against" not in line


def test_a_significant_gap_keeps_its_side(tmp_path, monkeypatch):
    # RAG ahead by 0.20, significant: it decides the answer (RAG) and is shown for it.
    line = _accuracy_line(tmp_path, monkeypatch, significant=True)
    assert "for, +2.0)" in line and "neither" not in line
