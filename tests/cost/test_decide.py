"""The decision: the eight framework scenarios, and measured evidence overriding the rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragortune.cost.analysis import analyse
from ragortune.cost.measured import evidence_from_dict as parse_evidence
from ragortune.cost.prices import PriceBook
from ragortune.cost.scenario import load_scenario
from ragortune.decide import decide

from .helpers import EXAMPLES, cli_json

BOOK = PriceBook()
EXPECTED = {
    "weekly-changing-knowledge": ("rag", "api"),
    "output-format": ("prompting", "api"),  # v2: prompting is costed; it wins (docs/cost.md)
    "large-stable-corpus": ("rag", "api"),
    "latency-short-queries": ("fine-tuning", "api"),
    "multi-domain-agent": ("rag", "api"),
    "persona-at-scale": ("hybrid", "api"),
    "pre-revenue": ("rag", "api"),
    "high-stable-volume": ("fine-tuning", "api"),  # v2: peak sizing + ops labour counted
}


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_each_framework_scenario_gets_its_expected_recommendation(cli, stem: str):
    data = cli_json(cli, "decide", "--scenario", str(EXAMPLES / f"{stem}.toml"))
    assert (data["recommendation"], data["serving"]) == EXPECTED[stem]
    assert data["matches_expected"] is True
    reasons = data["reasons"]
    assert reasons and reasons[0]["supports"]
    assert [r["rank"] for r in reasons] == list(range(1, len(reasons) + 1))
    assert all(any(ch.isdigit() for ch in r["text"]) or r["rule"] in (
        "multi_domain_agent", "prompting_first", "prompting_fails_behaviour")
               for r in reasons), "every reason cites its number"
    assert data["flips"] or data["sensitivity"], "every decision says what would change it"
    assert data["confidence"] >= 0.7 and not data["too_close_to_call"]
    assert data["runner_up"] and data["premium_over_runner_up"] is not None


def _decide(stem: str, evidence: dict | None = None):
    scenario = load_scenario(EXAMPLES / f"{stem}.toml")
    ev = parse_evidence(evidence, "evidence.json") if evidence is not None else None
    return decide(analyse(scenario, BOOK, ev), ev)


def test_weekly_changes_name_the_retraining_bill_and_the_change_rate_that_flips_it():
    d = _decide("weekly-changing-knowledge")
    top = d.reasons[0]
    assert top.rule == "total_cost" and "retrains 4.3 times a month" in top.text
    assert "growth counts as change" in top.text
    flip = next(f for f in d.flips if f["kind"] == "change_rate")
    assert 0 < flip["value"] < 4.33 and "matches RAG's cost" in flip["text"]


def test_poor_retrieval_means_fix_retrieval_first_not_fine_tuning():
    evidence = {"arms": {"rag": {"accuracy": 0.55}, "ft": {"accuracy": 0.75}},
                "retrieval": {"recall@10": 0.42, "mrr@10": 0.2}}
    d = _decide("large-stable-corpus", evidence)
    assert d.recommendation == "rag"
    assert d.first_step and d.first_step.startswith("Fix retrieval first")
    assert "recall@10 = 0.42" in d.first_step
    assert all(r.rule != "measured_accuracy" for r in d.reasons)
    assert d.evidence_keys == ["arms.rag.accuracy", "arms.ft.accuracy", "retrieval.recall@10",
                               "retrieval.mrr@10"]


def test_better_fine_tuned_accuracy_counts_when_retrieval_works():
    evidence = {"arms": {"rag": {"accuracy": 0.55}, "ft": {"accuracy": 0.75}},
                "retrieval": {"recall@10": 0.9, "mrr@10": 0.7}}
    d = _decide("large-stable-corpus", evidence)
    assert d.first_step is None
    reason = next(r for r in d.reasons if r.rule == "measured_accuracy")
    assert reason.points < 0 and "0.75" in reason.text


def _paired(rag: float, ft: float, *, significant: bool) -> dict:
    """Evidence as `eval answers` writes it: both accuracies and their paired test."""
    return {"arms": {"rag": {"accuracy": {"value": rag, "n": 30, "split": "held-out"}},
                     "ft": {"accuracy": {"value": ft, "n": 30, "split": "held-out"}}},
            "retrieval": {"recall@10": 0.9, "mrr@10": 0.7},
            "comparisons": {"answers": [{"a": "rag", "b": "ft", "n": 30, "diff": rag - ft,
                                         "p_value": 0.01 if significant else 0.31,
                                         "p_holm": 0.02 if significant else 0.42,
                                         "significant": significant, "method": "mcnemar-exact"}]}}


def test_an_accuracy_gap_counts_only_when_its_paired_test_is_significant():
    # Same accuracies (RAG 0.75, fine-tuned 0.55); only the paired test differs. On this
    # scenario the costs lean to fine-tuning, so a gap that is noise must not swing it to RAG.
    sure = _decide("latency-short-queries", _paired(0.75, 0.55, significant=True))
    noise = _decide("latency-short-queries", _paired(0.75, 0.55, significant=False))
    counted = next(r for r in sure.reasons if r.rule == "measured_accuracy")
    tie = next(r for r in noise.reasons if r.rule == "measured_accuracy")
    assert counted.points == 2.0 and "significant at n=30, p=0.02" in counted.text
    assert "RAG 0.75 vs fine-tuned 0.55" in counted.text
    assert tie.points == 0.0 and tie.favors == "neither"
    assert "not significant at n=30, p=0.42" in tie.text and "tie" in tie.text
    assert "measured_accuracy" not in noise.decisive
    assert (sure.recommendation, noise.recommendation) == ("rag", "fine-tuning")
    assert noise.recommendation == _decide("latency-short-queries").recommendation


def test_a_non_significant_gap_also_moves_no_monte_carlo_draw():
    noise = _decide("high-stable-volume", _paired(0.55, 0.75, significant=False))
    plain = _decide("high-stable-volume", {"arms": {}, "retrieval": {"recall@10": 0.9}})
    assert noise.scores == plain.scores
    assert noise.monte_carlo["confidence"] == plain.monte_carlo["confidence"]


def test_accuracy_without_a_paired_test_says_its_significance_is_unknown():
    d = _decide("latency-short-queries", {"arms": {"rag": {"accuracy": 0.75},
                                                   "ft": {"accuracy": 0.55}}})
    reason = next(r for r in d.reasons if r.rule == "measured_accuracy")
    assert reason.points == 2.0 and "significance is unknown" in reason.text


def test_a_fine_tuned_arm_that_goes_stale_counts_against_fine_tuning():
    plain = _decide("latency-short-queries")
    stale = _decide("latency-short-queries", {"arms": {"ft": {"stale_rate": 0.6}}})
    reason = next(r for r in stale.reasons if r.rule == "fine_tuned_arm_goes_stale")
    assert reason.favors == "retrieval" and "60%" in reason.text
    assert stale.scores["facts"] > plain.scores["facts"]


def test_measured_latency_within_budget_weakens_the_latency_rule():
    fits = _decide("latency-short-queries", {"arms": {"rag": {"latency_ms": {"p95": 250}}}})
    over = _decide("latency-short-queries", {"arms": {"rag": {"latency_ms": {"p95": 900}}}})
    fits_points, over_points = (next(r for r in d.reasons if r.rule.startswith("latency")).points
                                for d in (fits, over))
    assert fits_points == -1 and over_points == -3
    assert "900 ms, over the budget" in next(r.text for r in over.reasons
                                             if r.rule.startswith("latency"))


def test_decide_reads_evidence_from_the_cli(cli, tmp_path: Path):
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps({"retrieval": {"recall@10": 0.3}}))
    data = cli_json(cli, "decide", "--scenario", str(EXAMPLES / "pre-revenue.toml"),
                    "--evidence", str(evidence))
    assert data["first_step"].startswith("Fix retrieval first")
    assert data["evidence_keys_read"] == ["retrieval.recall@10"]
    text = cli("decide", "--scenario", str(EXAMPLES / "pre-revenue.toml")).stdout
    assert "Recommendation: RAG" in text and "What would change it" in text
