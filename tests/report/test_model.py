"""The adapter from an --out folder to the ReportModel: both evidence schemas, missing parts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ragortune.errors import InputError
from ragortune.report.model import load_report, wilson


def test_the_demo_folder_gives_every_arm_the_verdict_and_the_cost(demo_out: Path) -> None:
    model = load_report(demo_out)
    assert [a.name for a in model.arms] == ["base", "rag"]
    evidence = json.loads((demo_out / "evidence.json").read_text())
    rag = next(a for a in model.arms if a.name == "rag")
    assert rag.accuracy.value == pytest.approx(evidence["arms"]["rag"]["accuracy"])
    assert rag.accuracy.n == evidence["arms"]["rag"]["answerable"]
    # None (shown "not measured") when the update test did not run, its figure when it did
    assert rag.stale_rate.value == evidence["arms"]["rag"].get("stale_rate")
    decision = json.loads((demo_out / "decision.json").read_text())
    assert model.verdict is not None
    assert model.verdict.recommendation == decision["recommendation"]
    assert [r.text for r in model.verdict.reasons] == [r["text"] for r in decision["reasons"]]
    assert model.cost is not None and len(model.cost.curves) == len(
        json.loads((demo_out / "cost.json").read_text())["options"])
    assert model.run["versions"]["ragortune"]


def test_a_bare_proportion_gets_a_wilson_interval_marked_as_computed(demo_out: Path) -> None:
    rag = next(a for a in load_report(demo_out).arms if a.name == "rag")
    low, high = wilson(rag.accuracy.value, rag.accuracy.n)
    assert (rag.accuracy.low, rag.accuracy.high) == (low, high)
    assert low <= rag.accuracy.value <= high
    assert "wilson" in rag.accuracy.interval_source


def test_wilson_matches_the_textbook_value() -> None:
    low, high = wilson(0.5, 10)  # Wilson 1927 / Newcombe 1998 table: 0.2366, 0.7634
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)


def test_evidence_v2_figures_keep_their_interval_split_and_run(demo_out: Path) -> None:
    path = demo_out / "evidence.json"
    evidence = json.loads(path.read_text())
    evidence["arms"]["rag"]["accuracy"] = {"value": 0.6, "n": 25, "low": 0.41, "high": 0.77,
                                           "split": "held-out", "run_id": "r1"}
    evidence["arms"]["rag"]["accuracy_unseen"] = None  # an arm that trained on nothing
    evidence["arms"]["rag"]["accuracy_seen"] = {"value": 1.0, "n": 12, "low": 0.76,
                                                "high": 1.0, "split": "in-sample"}
    evidence["arms"]["rag"]["stale_rate"] = {"value": 0.2, "n": 5, "low": 0.04, "high": 0.62,
                                             "split": "held-out"}
    evidence["retrieval"] = {"ndcg@10": {"value": 0.71, "n": 300, "low": 0.67, "high": 0.75}}
    path.write_text(json.dumps(evidence))
    model = load_report(demo_out)
    rag = next(a for a in model.arms if a.name == "rag")
    assert (rag.accuracy.value, rag.accuracy.low, rag.accuracy.high) == (0.6, 0.41, 0.77)
    assert (rag.accuracy.n, rag.accuracy.split, rag.accuracy.run_id) == (25, "held-out", "r1")
    assert rag.accuracy.interval_source == "evidence"
    assert rag.accuracy_seen.split == "in-sample"
    assert (rag.stale_rate.value, rag.stale_rate.high) == (0.2, 0.62)
    assert model.retrieval["ndcg@10"].high == 0.75


def test_cost_per_correct_answer_is_the_options_cost_over_correct_answers(demo_out: Path
                                                                           ) -> None:
    cost = json.loads((demo_out / "cost.json").read_text())
    cost["assumptions"]["queries_per_month"] = [1000.0] * cost["scenario"]["horizon_months"]
    (demo_out / "cost.json").write_text(json.dumps(cost))
    model = load_report(demo_out)
    rag = next(a for a in model.arms if a.name == "rag")
    base = next(a for a in model.arms if a.name == "base")
    queries = 1000.0 * cost["scenario"]["horizon_months"]
    assert rag.cost_per_correct == pytest.approx(
        cost["options"]["rag"]["total"] / (queries * rag.accuracy.value))
    assert base.cost_per_correct is None  # the bare model is not a costed option


def test_queries_come_from_the_scenario_file_when_cost_json_has_none(demo_out: Path,
                                                                     tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text("[traffic]\nqueries_per_month = 1000\ngrowth_per_month = 0.1\n")
    cost = json.loads((demo_out / "cost.json").read_text())
    cost["scenario"]["path"] = str(scenario)
    for key in ("queries_first_month", "query_growth_per_month"):  # as cost.json v1 had it
        cost["assumptions"].pop(key, None)
    (demo_out / "cost.json").write_text(json.dumps(cost))
    rag = next(a for a in load_report(demo_out).arms if a.name == "rag")
    h = cost["scenario"]["horizon_months"]
    queries = 1000 * (1.1 ** h - 1) / 0.1
    assert math.isclose(rag.cost_per_correct,
                        cost["options"]["rag"]["total"] / (queries * rag.accuracy.value))


@pytest.mark.parametrize("keep", ["evidence.json", "decision.json", "cost.json", "answers.csv"])
def test_a_folder_with_one_part_still_loads(demo_out: Path, keep: str) -> None:
    for path in demo_out.iterdir():
        if path.name != keep:
            path.unlink()
    model = load_report(demo_out)
    assert model.present[keep] and sum(model.present.values()) == 1
    assert (model.verdict is not None) == (keep == "decision.json")
    assert (model.cost is not None) == (keep == "cost.json")
    assert bool(model.arms) == (keep == "evidence.json")


def test_a_folder_without_any_input_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="none of evidence.json"):
        load_report(tmp_path)
    with pytest.raises(InputError, match="folder not found"):
        load_report(tmp_path / "nope")


def test_a_broken_json_file_names_itself(demo_out: Path) -> None:
    (demo_out / "decision.json").write_text("{not json")
    with pytest.raises(InputError, match="decision.json: not valid JSON"):
        load_report(demo_out)


def test_disagreements_are_the_questions_where_arms_differ(demo_out: Path) -> None:
    import csv

    rows = list(csv.DictReader((demo_out / "answers.csv").open()))
    outcome: dict[str, set] = {}
    for r in rows:
        outcome.setdefault(r["query_id"], set()).add((r["correct"], r["abstained"]))
    expected = {q for q, seen in outcome.items() if len(seen) > 1}
    model = load_report(demo_out)
    assert {d.query_id for d in model.disagreements} == expected
    assert expected, "the demo fixture should hold at least one disagreement"
    for d in model.disagreements:
        assert set(d.answers) == {"base", "rag"} and d.gold


def test_decision_v2_confidence_bands_and_sensitivity_are_read(demo_out: Path) -> None:
    decision = json.loads((demo_out / "decision.json").read_text())
    option = decision["option"]
    h = json.loads((demo_out / "cost.json").read_text())["scenario"]["horizon_months"]
    decision.update(confidence=0.87, too_close_to_call=False, runner_up="ft_api",
                    premium_over_runner_up=-1234.0, sensitivity=[
                        {"driver": "queries", "now": 1.0, "down": None,
                         "up": {"value": 3.1, "option": "ft_api", "text": "At 150,000 ..."}}])
    decision["monte_carlo"] = {"draws": 2000, "confidence": 0.87, "options": {
        option: {"p10": 1.0, "p50": 2.0, "p90": 3.0, "win_share": 0.87}},
        "bands": {option: {"p10": [1.0] * h, "p90": [3.0] * h}}}
    (demo_out / "decision.json").write_text(json.dumps(decision))
    model = load_report(demo_out)
    assert model.verdict.confidence == "wins 87% of 2,000 draws"
    assert model.verdict.win_share == {option: 0.87}
    assert model.verdict.premium == -1234.0 and model.verdict.runner_up == "ft_api"
    assert [(s.driver, s.change) for s in model.sensitivity] == [("queries",
                                                                  "up to 3.1 (now 1.0)")]
    curve = next(c for c in model.cost.curves if c.option == option)
    assert curve.p10 == [1.0] * h and curve.p90 == [3.0] * h and curve.p50_total == 2.0
    assert model.cost_sensitivity  # the cost model's grid stays beside it


def test_run_json_is_the_provenance_when_compare_wrote_one(demo_out: Path) -> None:
    run = {"scenario": {"name": "demo", "path": "s.toml"},
           "settings": {"k": 3, "mode": "hybrid"},
           "models": {"llm": "smollm2", "embedder": "minilm"},
           "data": {"docs": {"sha256": "ab" * 32}},
           "stages": {"ingest": "cached", "answers": "ran"},
           "versions": {"ragortune": "9.9.9"}, "questions_synthesised": True}
    (demo_out / "run.json").write_text(json.dumps(run))
    model = load_report(demo_out)
    assert model.synthesised is True
    assert model.run["stages"] == {"ingest": "cached", "answers": "ran"}
    assert model.run["data"]["docs.sha256"] == "ab" * 32
    assert model.run["versions"] == {"ragortune": "9.9.9"}
    assert list(model.run)[:2] == ["scenario", "settings"]


def test_compares_run_json_config_and_questions_are_read(demo_out: Path) -> None:
    run = {"config": {"arms": ["base", "rag"], "llm": "smollm2"},
           "questions": {"path": "q.jsonl", "n": 24, "synthesised": True},
           "data": {"docs": "ff" * 32}, "stages": {"index v1": "cached"}}
    (demo_out / "run.json").write_text(json.dumps(run))
    model = load_report(demo_out)
    assert model.synthesised is True
    assert model.run["settings"]["arms"] == "base, rag"
    assert model.run["questions"]["n"] == "24"
