"""Decision engine v2 (issue 12): each bug a CTO found, stated as the behaviour now relied on."""

from __future__ import annotations

import itertools
import tomllib
from typing import Any

import numpy as np
import pytest
from matplotlib.text import Text

from ragortune.cost.analysis import analyse
from ragortune.cost.measured import evidence_from_dict
from ragortune.cost.montecarlo import uncertain_inputs
from ragortune.cost.plot import build_figure, spread_labels
from ragortune.cost.prices import PriceBook
from ragortune.cost.scenario import parse_scenario
from ragortune.cost.tco import CostModel, Drivers
from ragortune.decide import decide, sig2
from ragortune.errors import InputError

from .helpers import EXAMPLES, cli_json, run_main

BOOK = PriceBook()


def _data(**tables: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "t", "horizon_months": 24,
                            "corpus": {"documents": 2000, "tokens_per_document": 800},
                            "traffic": {"queries_per_month": 50_000},
                            "uncertainty": {"draws": 200}}
    for key, value in tables.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


def _decide(data: dict[str, Any], evidence: dict | None = None):
    ev = evidence_from_dict(evidence, "evidence.json") if evidence is not None else None
    return decide(analyse(parse_scenario(data), BOOK, ev), ev)


def _example(stem: str, **changes: Any) -> dict[str, Any]:
    data = tomllib.loads((EXAMPLES / f"{stem}.toml").read_text())
    for key, value in changes.items():
        table, _, field = key.partition("__")
        if value is None:
            data[table].pop(field, None)
        else:
            data.setdefault(table, {})[field] = value
    data.setdefault("uncertainty", {})["draws"] = 200
    return data


# -- 1. treat both alike ----------------------------------------------------------------------
def test_a_growing_corpus_retrains_the_fine_tuned_model_even_with_no_rewrites():
    # large-stable-corpus without its pinned quarterly cadence: 1 %/month growth, 0 rewrites
    data = _example("large-stable-corpus", finetune__retrain_every_months=None)
    model = CostModel(parse_scenario(data), BOOK)
    assert model.knowledge_per_month() == pytest.approx(0.01)
    assert model.ft_retrains_per_month() == 1.0
    d = _decide(data)
    assert d.recommendation == "rag"
    assert d.totals["ft_api"] > d.totals["rag"]


def test_every_option_pays_evaluation_upkeep_and_api_options_pay_base_model_migrations():
    data = _data(traffic={"queries_per_month": 0}, corpus={"change_per_month": 0.0})
    sim = CostModel(parse_scenario(data), BOOK).run()
    rate = 800.0
    for name, opt in sim.options.items():
        assert opt.lines["labour"][1] >= rate, f"{name} pays no monthly evaluation"
    # month 13: the 12-month-old base model is deprecated: API options migrate, FT-API retrains
    for name in ("rag", "prompting", "ft_api", "hybrid"):
        assert sim.options[name].lines["labour"][12] > sim.options[name].lines["labour"][11]
    assert sim.options["ft_api"].lines["training"][12] > 0
    assert sim.options["ft_self_hosted"].lines["training"][12] == 0  # open weights stay


def test_with_zero_queries_the_recommendation_is_not_fine_tuning():
    d = _decide(_data(traffic={"queries_per_month": 0}))
    assert d.recommendation == "rag"


def test_memorisation_risk_is_smooth_with_no_cliff_at_one_million_tokens():
    below = _decide(_data(corpus={"documents": 990, "tokens_per_document": 1000}))
    above = _decide(_data(corpus={"documents": 1009, "tokens_per_document": 1000}))
    assert below.recommendation == above.recommendation
    pts = [next(r.points for r in d.reasons if r.rule == "knowledge_in_weights")
           for d in (below, above)]
    assert 0 < pts[1] - pts[0] < 0.05
    assert all(r.rule != "large_corpus" for r in above.reasons)


def test_behaviour_needs_can_be_met_by_prompting_with_caching_and_it_is_costed():
    sim = CostModel(parse_scenario(_data(traffic={"system_tokens": 900,
                                                  "question_tokens": 400})), BOOK).run()
    tokens = sim.derived["tokens_per_query"]["prompting"]
    assert tokens["prompt"] == 1300 and tokens["cached"] == 900
    assert sim.options["prompting"].lines["prompt_tokens"][0] == pytest.approx(
        50_000 * (400 + 900 * 0.5) / 1e6 * 0.15)


def test_a_format_need_at_300_queries_a_month_is_prompted_not_trained():
    d = _decide(_example("output-format", traffic__queries_per_month=300))
    assert d.recommendation == "prompting"
    cost = next(r for r in d.reasons if r.rule == "behaviour_cost")
    assert cost.points < 0 and cost.dollars > 5000 and "training costs" in cost.text


def test_a_persona_at_2k_queries_is_prompted_unless_prompting_is_known_to_fail():
    small = _example("persona-at-scale", traffic__queries_per_month=2000,
                     profile__behaviour_by_prompting="untested")
    assert _decide(small).recommendation == "rag"
    hybrid = _decide(_example("persona-at-scale"))  # the example records that prompting fails
    assert hybrid.recommendation == "hybrid"
    premium = next(r for r in hybrid.reasons if r.rule == "behaviour_cost")
    assert premium.points < 0 and premium.dollars > 0  # its premium over prompting is shown


def test_self_hosted_hybrid_is_an_option_with_its_own_gpu_fleet():
    sim = CostModel(parse_scenario(_data(vector_store={"monthly": 70.0})), BOOK).run()
    hy = sim.options["hybrid_self_hosted"].lines
    assert hy["gpu_serving"].sum() > 0
    # it pays for the same vector store as RAG does (24 months x $70)
    assert hy["vector_storage"].sum() == sim.options["rag"].lines["vector_storage"].sum() > 70 * 24 - 1
    assert hy["prompt_tokens"].sum() == 0
    # longer retrieval prompts: at least as many GPUs as the plain fine-tuned model
    assert sim.derived["hybrid_gpus_serving_first_month"] >= sim.derived[
        "gpus_serving_first_month"]


def test_self_hosted_training_is_sized_from_model_size_and_tokens():
    small = CostModel(parse_scenario(_data()), BOOK).run().derived
    # 8B LoRA, 3M tokens on an A100: "a few hours" with setup, not 0.3
    assert 1.0 <= small["self_hosted_training_gpu_hours_per_run_initial"] <= 6.0
    assert "NVIDIA" in small["self_hosted_model"]["tflops_source"]
    big = CostModel(parse_scenario(_data(
        models={"self_hosted": "llama-3.1-70b-instruct"},
        serving={"train_method": "full", "gpu": "H100", "gpus_per_replica": 3})), BOOK)
    derived = big.run().derived
    assert derived["self_hosted_model"]["train_gpus"] >= 8  # 70B x 16 bytes does not fit one
    assert derived["self_hosted_training_gpu_hours_per_run_initial"] > 10 * small[
        "self_hosted_training_gpu_hours_per_run_initial"]


# -- 2. pre-revenue ------------------------------------------------------------------------
def test_pre_revenue_is_judged_on_realised_volume_and_a_forecast_gives_a_revisit_date():
    # a big prompted model against a small fine-tuned one: at scale fine-tuning pays
    data = _data(traffic={"queries_per_month": 3000, "growth_per_month": 0.6},
                 models={"rag": "gpt-4o", "finetune": "gpt-4o-mini"},
                 profile={"pre_revenue": True, "needs": ["facts"]}, horizon_months=36)
    d = _decide(data)
    assert d.serving == "api" and d.recommendation == "rag"
    assert d.revisit and d.revisit.startswith("Revisit at") and "expected in month" in d.revisit


# -- 3. ranges and Monte Carlo ---------------------------------------------------------------
def test_monte_carlo_is_seeded_and_gives_p10_p50_p90_and_win_shares():
    data = _example("high-stable-volume")
    a, b = _decide(data).monte_carlo, _decide(data).monte_carlo
    assert a["options"] == b["options"]
    for o in a["options"].values():
        assert o["p10"] <= o["p50"] <= o["p90"]
    assert sum(o["win_share"] for o in a["options"].values()) == pytest.approx(1.0)
    assert 0.5 < a["confidence"] < 1.0


def test_too_close_to_call_names_the_driver_that_would_settle_it():
    data = _example("high-stable-volume")
    data["uncertainty"]["confidence"] = 0.95
    d = _decide(data)
    mc = d.monte_carlo
    assert mc["too_close_to_call"] is True
    assert mc["settled_by"]["driver"] in {i["name"] for i in mc["inputs"]}
    assert "settles it" in mc["settled_by"]["text"]


def test_a_scenario_range_is_used_and_measured_inputs_are_marked_and_narrowed():
    data = _data(uncertainty={"draws": 200, "queries_per_month": [10_000, 50_000, 200_000]})
    ev = evidence_from_dict({"arms": {"rag": {"tokens_per_query": {"prompt": 1500}}}})
    inputs = {i.name: i for i in uncertain_inputs(CostModel(parse_scenario(data), BOOK, ev))}
    assert (inputs["queries_per_month"].basis, inputs["queries_per_month"].high) == (
        "range", 200_000)
    prompt = inputs["prompt_tokens"]
    assert prompt.basis == "measured" and prompt.high / prompt.low < 1.11
    assert inputs["labour_days"].basis == "assumed"
    with pytest.raises(InputError, match="uncertainty.*increasing order"):
        parse_scenario(_data(uncertainty={"queries_per_month": [9, 1]}))


# -- 4. reasons ranked by what decides ------------------------------------------------------
def test_the_reason_that_decides_comes_first_and_the_runner_up_gap_is_stated():
    d = _decide(_example("persona-at-scale"))
    assert d.reasons[0].rule in d.decisive
    assert d.reasons[0].rule == "prompting_fails_behaviour"
    data = d.to_dict()
    assert data["runner_up"] == "rag"
    assert data["premium_over_runner_up"] == pytest.approx(d.totals["hybrid"] - d.totals["rag"])


def test_flip_points_are_rounded_to_two_significant_figures():
    assert sig2(13_406_077) == 13_000_000 and sig2(0.4317) == 0.43
    d = _decide(_example("high-stable-volume"))
    for f in d.flips:
        if f["kind"] == "query_volume":
            assert f["value"] == sig2(f["value"]) and "13,406,077" not in f["text"]


def test_sensitivity_is_about_the_decision_and_the_flip_it_names_is_real():
    data = _example("high-stable-volume")
    d = _decide(data)
    row = next(r for r in d.sensitivity if r["driver"] == "queries")
    flip = row["up"] or row["down"]
    assert flip["option"] != d.option
    model = CostModel(parse_scenario(data), BOOK)
    from ragortune.decide import pick
    assert pick(model, None, Drivers(queries=flip["value"] * 1.05)) == flip["option"]
    assert pick(model, None, Drivers(queries=1.0)) == d.option


def test_a_measured_stale_rate_replaces_the_cadence_estimate():
    data = _data(corpus={"change_per_month": 0.2}, finetune={"retrain_every_months": 3})
    estimated = _decide(data)
    lag = next(r for r in estimated.reasons if r.rule == "retraining_lags_changes")
    assert "retrains every 3 months (fixed in the scenario)" in lag.text
    assert "to stay fresh" not in lag.text
    measured = _decide(data, {"arms": {"ft": {"stale_rate": 0.05}}})
    rules = {r.rule for r in measured.reasons}
    assert "retraining_lags_changes" not in rules and "fine_tuned_arm_goes_stale" in rules


# -- 5. sanity limits ---------------------------------------------------------------------
def test_absurd_volume_is_warned_in_the_output_and_the_json(cli, write_scenario):
    path = write_scenario(tomllib_dump(_data(traffic={"queries_per_month": 1e12})))
    data = cli_json(cli, "cost", "--scenario", str(path), "--no-png")
    assert any("queries a second" in w for w in data["warnings"])
    assert "WARNING" in cli("cost", "--scenario", str(path), "--no-png").stdout


def test_a_model_that_does_not_fit_the_gpu_is_refused_with_the_sizes(tmp_path):
    data = _data(models={"self_hosted": "llama-3.1-70b-instruct"}, serving={"gpu": "T4"})
    with pytest.raises(InputError, match=r"70B .*168 GB.*does not fit 1 x T4 \(16 GB"):
        CostModel(parse_scenario(data), BOOK)


def test_the_gpu_fleet_is_sized_for_peak_traffic():
    flat = CostModel(parse_scenario(_data(traffic={"queries_per_month": 10_000_000},
                                          serving={"peak_to_average": 1.0})), BOOK).run()
    peak = CostModel(parse_scenario(_data(traffic={"queries_per_month": 10_000_000},
                                          serving={"peak_to_average": 3.0})), BOOK).run()
    assert peak.derived["gpus_serving_first_month"] == 3 * flat.derived[
        "gpus_serving_first_month"]


def test_an_empty_needs_list_is_an_error_naming_the_field(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(tomllib_dump(_data(profile={"needs": []})))
    result = run_main("decide", "--scenario", str(path), cwd=tmp_path)
    assert result.returncode == 2 and "profile.needs" in result.stderr


# -- 6. the chart ------------------------------------------------------------------------------
def test_stacked_labels_never_overlap():
    for wanted in ([0.5, 0.5, 0.5, 0.5], [0.1, 0.12, 0.9, 0.91, 0.95], [0.99] * 6):
        placed = sorted(spread_labels(wanted, gap=0.075, low=0.0, high=1.0))
        assert all(b - a >= 0.075 - 1e-9 for a, b in itertools.pairwise(placed))


def test_chart_has_bands_the_pick_and_non_overlapping_break_even_labels():
    data = _example("multi-domain-agent")
    analysis = analyse(parse_scenario(data), BOOK)
    d = decide(analysis)
    fig = build_figure(analysis.simulation, analysis.pairs, "t", d.monte_carlo["bands"],
                       d.option)
    cum_ax = fig.axes[0]
    assert cum_ax.collections, "P10-P90 bands are drawn"
    assert any(t.get_text().startswith("PICK:") for t in cum_ax.get_legend().get_texts())
    # with no pick every pair's break-even is labelled: three within months 2-3 here
    fig = build_figure(analysis.simulation, analysis.pairs, "t")
    fig.canvas.draw()
    cum_ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    # the label text itself (an Annotation's own extent also spans its leader line)
    boxes = [Text.get_window_extent(t, renderer) for t in cum_ax.texts
             if t.get_gid() == "break-even"]
    assert len(boxes) >= 3, "break-even months are labelled"
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_a_log_axis_shows_several_labelled_ticks():
    analysis = analyse(parse_scenario(_example("high-stable-volume")), BOOK)
    fig = build_figure(analysis.simulation, analysis.pairs)
    fig.canvas.draw()
    logs = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    assert logs
    for ax in logs:
        lo, hi = ax.get_ylim()
        labels = [t for t in ax.get_yticklabels() if t.get_text() and lo <= t.get_position()[1]
                  <= hi]
        assert len(labels) >= 3


def test_a_one_month_horizon_draws_bars_not_an_empty_chart():
    analysis = analyse(parse_scenario(_data(horizon_months=1)), BOOK)
    d = decide(analysis)
    fig = build_figure(analysis.simulation, analysis.pairs, "", d.monte_carlo["bands"], d.option)
    ax = fig.axes[0]
    assert len(ax.patches) == 6 and any(t.get_text() == "pick" for t in ax.texts)
    assert np.all([p.get_height() > 0 for p in ax.patches])


def tomllib_dump(data: dict[str, Any]) -> str:
    """A tiny TOML writer for the flat tables these tests build."""
    lines, tables = [], []
    for key, value in data.items():
        (tables if isinstance(value, dict) else lines).append((key, value))
    out = [f"{k} = {_toml(v)}" for k, v in lines]
    for name, table in tables:
        out.append(f"[{name}]")
        out += [f"{k} = {_toml(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)
