"""The TCO simulation, break-even searches, sensitivity, and what is read from evidence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragortune.cost.analysis import analyse
from ragortune.cost.breakeven import break_even_month, retrain_break_even
from ragortune.cost.measured import evidence_from_dict as parse_evidence
from ragortune.cost.measured import read_evidence as load_evidence
from ragortune.cost.prices import PriceBook
from ragortune.cost.scenario import load_scenario, parse_scenario
from ragortune.cost.tco import LINES, OPTIONS, CostModel, Drivers
from ragortune.errors import InputError

from .helpers import EXAMPLES

BOOK = PriceBook()


def _model(evidence=None, **tables) -> CostModel:
    data = {"name": "t", "horizon_months": 12,
            "corpus": {"documents": 1000, "tokens_per_document": 1000},
            "traffic": {"queries_per_month": 100_000}}
    for key, value in tables.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return CostModel(parse_scenario(data), BOOK, evidence)


def test_every_option_reports_every_cost_line_separately():
    sim = _model().run()
    assert set(sim.options) == set(OPTIONS)
    for opt in sim.options.values():
        assert set(opt.lines) == set(LINES)
        assert all(line.shape == (12,) for line in opt.lines.values())
        assert opt.cumulative[-1] == pytest.approx(opt.total)
    rag, ft, self_hosted = (sim.options[o].lines for o in ("rag", "ft_api", "ft_self_hosted"))
    assert rag["training"].sum() == 0 and rag["gpu_serving"].sum() == 0
    assert ft["embedding_initial"].sum() == 0 and ft["vector_storage"].sum() == 0
    assert self_hosted["prompt_tokens"].sum() == 0 and self_hosted["gpu_serving"].sum() > 0


def test_only_changed_and_new_content_is_reembedded():
    model = _model(corpus={"change_per_month": 0.10, "growth_per_month": 0.0})
    updates = model.run().options["rag"].lines["embedding_updates"]
    assert updates[0] == 0
    # 10% of 1M tokens a month at $0.02/M
    assert updates[1:] == pytest.approx(np.full(11, 100_000 / 1e6 * 0.02))


def test_fine_tuned_model_retrains_at_every_update_unless_a_cadence_is_given():
    weekly = _model(corpus={"change_per_month": 0.2, "updates_per_month": 4.33})
    assert weekly.ft_retrains_per_month() == pytest.approx(4.33)
    runs = weekly.run().options["ft_api"].lines["training"] / weekly.run().derived[
        "training_cost_per_run_initial"]
    assert runs[0] == 1 and runs[1:].sum() == pytest.approx(np.floor(11 * 4.33))

    quarterly = _model(corpus={"change_per_month": 0.2}, finetune={"retrain_every_months": 3})
    sim = quarterly.run()
    per_run = sim.derived["training_cost_per_run_initial"]
    assert np.nonzero(sim.options["ft_api"].lines["training"])[0].tolist() == [0, 3, 6, 9]
    assert sim.options["ft_api"].lines["training"][3] == pytest.approx(per_run)
    assert sim.derived["ft_average_stale_share"] == pytest.approx(0.2 * 3 / 2)

    stable = _model()
    assert stable.ft_retrains_per_month() == 0


def test_self_hosted_gpus_scale_with_traffic():
    model = _model(traffic={"queries_per_month": 10_000_000},
                   serving={"requests_per_gpu_minute": 60, "hours_per_day": 24,
                            "peak_to_average": 2.0})
    derived = model.run().derived
    # 10M / (24 h x 30 d x 60 min) = 231 requests a minute, x2 at peak = 463 -> 8 GPUs at 60
    assert derived["gpus_serving_first_month"] == 8
    assert derived["gpu_hours_per_month_first"] == 8 * 24 * 30


def test_break_even_month_is_where_the_cumulative_order_flips_for_good():
    upfront = np.cumsum([100.0, 10, 10, 10, 10])
    pay_as_you_go = np.cumsum([30.0, 30, 30, 30, 30])
    assert break_even_month(upfront, pay_as_you_go) == 5  # 140 < 150 first in month 5
    assert break_even_month(pay_as_you_go, pay_as_you_go + 1) is None


def test_break_even_volume_is_where_the_two_totals_meet():
    scenario = load_scenario(EXAMPLES / "large-stable-corpus.toml")
    analysis = analyse(scenario, BOOK)
    pair = next(p for p in analysis.pairs if (p.a, p.b) == ("rag", "ft_api"))
    assert pair.break_even_queries_per_month is not None
    factor = pair.break_even_queries_per_month / scenario.traffic.queries_per_month
    totals = analysis.model.run(Drivers(queries=factor)).totals()
    assert totals["rag"] == pytest.approx(totals["ft_api"], rel=1e-6)
    above = analysis.model.run(Drivers(queries=factor * 1.5)).totals()
    assert above[pair.cheaper_above_break_even] == min(above["rag"], above["ft_api"])


def test_retrain_break_even_is_where_retraining_eats_the_savings():
    model = CostModel(load_scenario(EXAMPLES / "latency-short-queries.toml"), BOOK)
    r = retrain_break_even(model, "ft_api", "rag")
    assert 0 < r < 60
    below = model.run(Drivers(retrains_per_month=r * 0.9)).totals()
    above = model.run(Drivers(retrains_per_month=r * 1.1)).totals()
    assert below["ft_api"] < below["rag"] and above["ft_api"] > above["rag"]


def test_sensitivity_scales_each_main_driver():
    analysis = analyse(load_scenario(EXAMPLES / "weekly-changing-knowledge.toml"), BOOK)
    rows = analysis.sensitivity
    assert {r["driver"] for r in rows} == {"queries", "change", "prompt", "labour"}
    base = analysis.simulation.totals()
    for row in rows:
        if row["factor"] == 1.0:
            assert row["totals"] == pytest.approx(base)
    labour = {r["factor"]: r["totals"]["rag"] for r in rows if r["driver"] == "labour"}
    assert labour[4.0] > labour[1.0] > labour[0.25]


def test_measured_tokens_per_query_replace_the_estimate(tmp_path):
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps({"arms": {"rag": {"tokens_per_query": {"prompt": 2000}}}}))
    evidence = load_evidence(path)
    model = _model(evidence)
    assert model.tokens["rag"].prompt == 2000
    assert "evidence" in model.tokens["rag"].source
    assert model.tokens["rag"].completion == 250  # missing part: still the estimate
    assert model.tokens["ft"].source.startswith("estimate")
    prompt = model.run().options["rag"].lines["prompt_tokens"][0]
    # the 150 system tokens repeat on every call: the provider's cache bills them at half price
    assert prompt == pytest.approx(100_000 * (1850 + 150 * 0.5) / 1e6 * 0.15)
    assert evidence.keys_read == ("arms.rag.tokens_per_query.prompt",)


def test_evidence_reads_only_documented_keys_and_rejects_wrong_types(tmp_path):
    evidence = parse_evidence({
        "arms": {"ft": {"accuracy": 0.8, "stale_rate": 0.4, "latency_ms": {"p95": 300}},
                 "mystery": {"accuracy": 1.0}},
        "retrieval": {"recall@5": 0.5, "recall@10": 0.7, "mrr@10": 0.4, "ndcg@10": 0.6},
    })
    assert evidence.arm("ft").stale_rate == 0.4 and evidence.arm("rag").accuracy is None
    assert evidence.recall == ("recall@10", 0.7) and evidence.mrr == ("mrr@10", 0.4)
    assert "mystery" not in evidence.arms
    with pytest.raises(InputError, match=r"arms.rag.accuracy.*must be a number"):
        parse_evidence({"arms": {"rag": {"accuracy": "high"}}})
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        load_evidence(bad)
