"""The CLI's tables at 80 columns: nothing is cut to "…", and the figures a reader came for
(totals, percentiles, option names, metric values) appear whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragortune.kb import open_kb
from ragortune.kb.sync import sync

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "scenarios" / "weekly-changing-knowledge.toml"


def ragortune(*args: str, cwd: Path) -> str:
    """Run the real CLI in a child whose terminal is 80 columns wide; its stdout."""
    env = {**os.environ, "COLUMNS": "80", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", "from ragortune.cli import main; main()", *args],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_readable(text: str) -> None:
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_cost_and_decide_tables_keep_every_total_at_80_columns(tmp_path):
    data = json.loads(ragortune("cost", "--scenario", str(SCENARIO), "--no-png", "--json",
                                cwd=tmp_path))
    shown = ragortune("cost", "--scenario", str(SCENARIO), "--no-png", cwd=tmp_path)
    assert_readable(shown)
    for option in data["options"].values():
        total = option["total"]
        assert (f"${total:,.0f}" if abs(total) >= 100 else f"${total:,.2f}") in shown
    for name in ("Hybrid-self", "FT-self", "Prompting", "completion", "volume flip"):
        assert name in shown
    decided = json.loads(ragortune("decide", "--scenario", str(SCENARIO), "--json",
                                   cwd=tmp_path))
    shown = ragortune("decide", "--scenario", str(SCENARIO), cwd=tmp_path)
    assert_readable(shown)
    for option in decided["monte_carlo"]["options"].values():
        if option["candidate"]:
            assert f"${option['p50']:,.0f}" in shown and f"{option['win_share']:.0%}" in shown


def test_price_tables_drop_provenance_columns_with_a_note_rather_than_cut_dates(tmp_path):
    shown = ragortune("prices", cwd=tmp_path)
    assert_readable(shown)
    catalogue = json.loads(ragortune("prices", "--json", cwd=tmp_path))
    for row in catalogue["gpus"]:
        assert row["gpu"] in shown and row["as_of"] in shown
    one = ragortune("prices", "gpt-4o-mini", cwd=tmp_path)
    assert_readable(one)
    assert "not shown at this width" in one and "ft_output_mtok" in one


def test_status_and_eval_retrieval_at_80_columns(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Shelves\n\nShelf 4 holds the spare routers.\n")
    kb = tmp_path / "a-knowledge-base-folder-with-a-rather-long-name-to-show-folding"
    sync(open_kb(kb, embedder=embedder, create=True), [docs])
    shown = ragortune("status", "--kb", str(kb), cwd=tmp_path)
    assert_readable(shown)
    assert "not calibrated" in shown
    (tmp_path / "set" / "qrels").mkdir(parents=True)
    (tmp_path / "set" / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": f"Fact {i}", "text": f"Shelf {i} holds {i} boxes."})
        + "\n" for i in range(6)))
    (tmp_path / "set" / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "How many boxes on shelf 2?"}) + "\n")
    (tmp_path / "set" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    shown = ragortune("eval", "retrieval", "--dataset", str(tmp_path / "set"), "--sweep",
                      "mode=dense,bm25,hybrid k=1,5", cwd=tmp_path)
    assert_readable(shown)
    for column in ("ndcg@10", "mrr@10", "hit_rate", "hybrid"):
        assert column in shown


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_table_helper_never_cuts_a_cell(width, monkeypatch):
    import importlib

    from rich.console import Console

    cli_app = importlib.import_module("ragortune.cli.app")  # the package shadows it with `app`
    narrow = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setattr(cli_app, "console", narrow)
    rows = [("FT-API vs Hybrid-self", "$139,520", "https://example.com/a/long/pricing/page",
             "2026-04-01")] * 3
    narrow.print(cli_app.table(("pair", "by", "source", "as of"), rows, numeric=("by", "as of"),
                               optional=("source",)))
    text = narrow.export_text()
    assert "…" not in text and "$139,520" in text and "2026-04-01" in text
    assert "Hybrid-self" in text  # wrapped at the space, never inside the word


def _answers() -> tuple[dict, dict]:
    """Summary and evidence figures of four arms, computed by the library from answer rows."""
    from ragortune.evaluate.arms import Arm, ArmAnswer, summarise
    from ragortune.evaluate.heldout import arms_evidence

    arms = [Arm("base", False, None), Arm("rag", True, None), Arm("rag-bm25", True, None),
            Arm("hybrid-self", True, None)]
    rows = [ArmAnswer(arm.name, f"q{i}", f"question {i}", "12 days" if i % 3 else "no idea",
                      i % 5 != 0, float(i % 3 > 0), 0.5, i % 3 > 0, i % 3 > 0, i % 5 == 0,
                      ("d1",) if arm.retrieval else (), (i % 2 == 0) if arm.retrieval else None,
                      12, 1234 + i, 321 + i, 1520.0 + 37 * i)
            for arm in arms for i in range(40)]
    summary = summarise(rows)
    _, figures, _ = arms_evidence(rows, arms, summary, run="r1", dataset="h")
    return summary, figures


def _at_width(monkeypatch, width: int):
    import importlib

    from rich.console import Console

    cli_app = importlib.import_module("ragortune.cli.app")  # the package shadows it with `app`
    answers = importlib.import_module("ragortune.cli.eval_answers")
    narrow = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setattr(cli_app, "console", narrow)
    monkeypatch.setattr(answers, "console", narrow)
    return answers, narrow


def test_eval_answers_tables_keep_every_figure_at_80_columns(monkeypatch):
    answers, narrow = _at_width(monkeypatch, 80)
    summary, figures = _answers()
    answers._arm_table("scifact: 40 labelled questions", summary)
    answers._figure_table(figures)
    text = narrow.export_text()
    assert_readable(text)
    for arm, s in summary.items():
        assert arm in text and f"{s['accuracy']:.3f}" in text and f"{s['f1']:.3f}" in text
        assert f"{s['latency_ms']['p50']:.0f}" in text
    # A column that does not fit is named as left out, never cropped at the edge ("pro").
    for column in ("p95 ms", "prompt tok", "compl tok"):
        assert column in text
    for f in figures.values():
        acc = f["accuracy"]
        assert f"{acc['value']:.2f} [{acc['low']:.2f}," in text  # wrapped, never cut


def test_eval_update_table_at_80_columns(monkeypatch):
    answers, narrow = _at_width(monkeypatch, 80)
    summary, figures = _answers()
    ci = {"value": 0.5, "low": 0.31, "high": 0.69, "n": 24}
    arms = {name: {"accuracy_v1": 0.611, "accuracy_v2": 0.583, "new_fact_accuracy": ci,
                   "stale_rate_changed": ci, "stale_rate_withdrawn": None,
                   "update_cost": {"kind": kind, "seconds": 1234.5, "estimated": True}}
            for name, kind in (("rag", "reindex"), ("hybrid-self", "reindex+retrain"),
                               ("ft@v1", "none"))}
    answers._print_update({
        "new_facts": 12, "summary": {"v1": summary, "v2": summary}, "arms": arms,
        "figures": figures, "comparisons": [],
        "index_v2": {"documents": {"updated": 3, "added": 1, "deleted": 0, "unchanged": 40},
                     "chunks_embedded": 5, "embedding_tokens": 1200, "seconds": 2.5},
        "retraining": None, "files": {}})
    text = narrow.export_text()
    assert_readable(text)
    for name in ("rag", "hybrid-self", "ft@v1", "accuracy v1", "0.583", "re-index +", "retrain",
                 "1234.5 s", "not retrained", "stale", "(withdrawn)", "update cost"):
        assert name in text


def test_tune_validate_problems_at_80_columns(tmp_path):
    data = tmp_path / "train.jsonl"
    good = {"messages": [{"role": "user", "content": "What is the refund window?"},
                         {"role": "assistant", "content": "Thirty days from delivery."}]}
    data.write_text("\n".join([
        json.dumps(good), "{not json", json.dumps({"messages": [good["messages"][0]]}),
        json.dumps(good), json.dumps({"messages": "a string"})]) + "\n")
    shown = subprocess.run(
        [sys.executable, "-c", "from ragortune.cli import main; main()", "tune", "validate",
         str(data)], env={**os.environ, "COLUMNS": "80", "HF_HUB_OFFLINE": "1"}, cwd=tmp_path,
        capture_output=True, text=True, timeout=600, check=False)
    assert shown.returncode == 1, shown.stderr  # errors found
    assert_readable(shown.stdout)
    report = json.loads(subprocess.run(
        [sys.executable, "-c", "from ragortune.cli import main; main()", "tune", "validate",
         str(data), "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
        check=False).stdout)
    for problem in report["problems"]:
        assert problem["code"] in shown.stdout
