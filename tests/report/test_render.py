"""Both reports: every section is there with its numbers, data is escaped, nothing is fetched."""

from __future__ import annotations

import csv
import itertools
import json
import re
from pathlib import Path

from ragortune.report import build_report, load_report
from ragortune.report.charts import _spread, cost_chart
from ragortune.report.html import render_html
from ragortune.report.model import BreakEven, CostView, Curve

SECTIONS = ("verdict", "arms", "retrieval", "cost", "sensitivity", "disagreements",
            "provenance")
EVIL = '<script>alert("x")</script> | **bold** [link](http://evil.example) & more'


def test_every_section_renders_with_the_measured_numbers(demo_out: Path) -> None:
    model, paths = build_report(demo_out)
    html = paths["html"].read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert f"Recommendation: {model.verdict.label}" in html
    for reason in model.verdict.reasons:
        assert reason.text.replace("&", "&amp;").replace("'", "&#39;") in html
    rag = next(a for a in model.arms if a.name == "rag")
    assert f"{rag.accuracy.value:.2f} [{rag.accuracy.low:.2f}, {rag.accuracy.high:.2f}]" in html
    assert f"{rag.latency_p50_ms:,.0f} / {rag.latency_p95_ms:,.0f} ms" in html
    assert "Retrieval metrics not measured" in html  # the demo has no qrels
    for d in model.disagreements:
        assert d.question.replace("'", "&#39;") in html
    assert model.run["versions"]["torch"] in html
    assert html.count("<svg") == 2  # accuracy and cost charts


def test_the_markdown_report_carries_the_same_content(demo_out: Path) -> None:
    model, paths = build_report(demo_out)
    text = paths["markdown"].read_text()
    for heading in ("## Recommendation", "## The arms, measured", "## Retrieval",
                    "## Cost over time", "## Sensitivity", "## Where the arms disagree",
                    "## How this was measured"):
        assert heading in text
    rag = next(a for a in model.arms if a.name == "rag")
    assert f"{rag.accuracy.value:.2f} \\[{rag.accuracy.low:.2f}, {rag.accuracy.high:.2f}\\]" in text
    assert f"{len(model.disagreements)} of {model.questions_asked} questions" in text


def test_retrieval_metrics_appear_when_measured(scifact_out: Path) -> None:
    model, paths = build_report(scifact_out)
    evidence = json.loads((scifact_out / "evidence.json").read_text())
    html = paths["html"].read_text()
    assert model.retrieval and "ndcg@10" in model.retrieval
    assert f"{evidence['retrieval']['ndcg@10']:.3f}" in html
    assert "Answers not measured" in html and "Per-question answers not recorded" in html
    assert f"{evidence['retrieval']['ndcg@10']:.3f}" in paths["markdown"].read_text()


def _plant(out: Path) -> None:
    """Hostile text wherever data reaches the page: an answer, a question, a reason, a label."""
    path = out / "answers.csv"
    rows = list(csv.DictReader(path.open()))
    first = rows[0]["query_id"]
    for r in rows:
        if r["query_id"] == first:
            r["answer"] = EVIL if r["arm"] == "rag" else "no"
            r["correct"] = str(r["arm"] == "rag")
            r["question"] = EVIL
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    decision = json.loads((out / "decision.json").read_text())
    decision["reasons"][0]["text"] = EVIL
    (out / "decision.json").write_text(json.dumps(decision))
    cost = json.loads((out / "cost.json").read_text())
    cost["options"]["rag"]["label"] = EVIL
    (out / "cost.json").write_text(json.dumps(cost))


def test_text_from_data_is_escaped_in_html(demo_out: Path) -> None:
    _plant(demo_out)
    _, paths = build_report(demo_out)
    html = paths["html"].read_text()
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert 'href="http' not in html


def test_text_from_data_is_escaped_in_markdown(demo_out: Path) -> None:
    _plant(demo_out)
    _, paths = build_report(demo_out)
    text = paths["markdown"].read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "[link](http" not in text and "**bold**" not in text
    # A pipe in an answer must not add a column: every row of a table has its header's cells.
    for block in re.split(r"\n\n", text):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        cells = {len(re.split(r"(?<!\\)\|", ln)) for ln in lines}
        assert len(cells) <= 1, block


def test_the_page_references_nothing_outside_itself(demo_out: Path) -> None:
    html = render_html(load_report(demo_out))
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    for pattern in (r"<script", r"<link", r"<img[^>]+src=\"http", r"@import", r"url\((?!#)",
                    r"<iframe", r"xlink:href=\"http"):
        assert not re.search(pattern, html), pattern


def test_a_one_month_horizon_draws_bars_not_an_empty_chart() -> None:
    cost = CostView("s", 1, "rag", [Curve("rag", "RAG", 10.0, [10.0], None, None),
                                    Curve("ft_api", "FT", 30.0, [30.0], [20.0], [40.0])], [])
    svg = cost_chart(cost, "rag")
    assert svg.startswith("<svg") and "(pick)" in svg and "first month" in svg


def test_labels_of_curves_ending_together_are_spread_apart() -> None:
    placed = _spread([100.0, 101.0, 102.0, 300.0], gap=15.0)
    ordered = sorted(placed)
    assert all(b - a >= 15.0 - 1e-6 for a, b in itertools.pairwise(ordered))
    assert placed[3] == 300.0  # a label with room keeps its place


def test_the_pick_is_marked_in_the_chart(demo_out: Path) -> None:
    model = load_report(demo_out)
    svg = cost_chart(model.cost, model.verdict.option)
    assert svg.count("pick") == 1
    curves = [Curve("rag", "RAG", 1.0, [0.5, 1.0], None, None),
              Curve("hybrid", "Hybrid", 2.0, [1.0, 2.0], [0.8, 1.5], [1.2, 2.6])]
    svg = cost_chart(CostView("s", 2, "rag", curves, [BreakEven("rag", "hybrid", 1, "rag",
                                                                 -1.0, None)]), "hybrid")
    assert "Hybrid: $2" in svg and "P10-P90" in svg


def test_a_reason_weighed_at_nothing_reads_as_a_tie_not_against(demo_out: Path) -> None:
    """decide states a gap that is not significant and gives it no points ("favors":
    "neither"): the report must not present it as an argument against the pick."""
    decision = json.loads((demo_out / "decision.json").read_text())
    decision["reasons"][0].update(text="Measured accuracy: a tie at n=30", favors="neither",
                                  supports=False, points=0.0)
    (demo_out / "decision.json").write_text(json.dumps(decision))
    _, paths = build_report(demo_out)
    assert re.search(r"\(tie\b[^)]*\) Measured accuracy: a tie at n=30",
                     paths["markdown"].read_text())
    assert '<span class="tag tie">tie</span>' in paths["html"].read_text()
