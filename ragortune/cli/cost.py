"""Cost and decision commands: prices, cost, decide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ragortune.cli.app import JSON_OPTION, app, console, emit_json, table
from ragortune.errors import InputError

SCENARIO_OPTION = typer.Option(..., "--scenario", help="Scenario TOML (examples/scenarios/).")
EVIDENCE_OPTION = typer.Option(None, "--evidence", help="evidence.json from the evaluation.")
PRICES_OPTION = typer.Option(None, "--prices", help="Price overrides, TOML or YAML (highest "
                             "priority; then the scenario's [prices], then ragortune.toml).")
NAME_ARGUMENT = typer.Argument(None, help="A model (gpt-4o-mini) or GPU (A10G, H100@lambda); "
                               "omit to list the packaged tables.")
PRICES_SCENARIO_OPTION = typer.Option(None, "--scenario", help="Also apply this scenario's "
                                      "[prices] overrides.")
PNG_OPTION = typer.Option(None, "--png", help="Where to write the cumulative-cost chart "
                          "[default: SCENARIO-FILE-STEM.cost.png in the current folder].")
DECIDE_PNG_OPTION = typer.Option(None, "--png", help="Also write the cost chart here.")
NO_PNG_OPTION = typer.Option(False, "--no-png", help="Do not write the chart.")


def _money(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _compact(x: float) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"${x / size:,.1f}{suffix}"
    return f"${x:,.0f}"


def _analyse(scenario: Path, evidence: Path | None, prices: Path | None) -> Any:
    from ragortune.cost.analysis import analyse, price_book_for
    from ragortune.cost.measured import read_evidence
    from ragortune.cost.scenario import load_scenario

    scn = load_scenario(scenario)
    ev = read_evidence(evidence) if evidence is not None else None
    return analyse(scn, price_book_for(scn, scenario, prices), ev), ev


@app.command("prices")
def prices_command(
    name: str | None = NAME_ARGUMENT,
    prices: Path | None = PRICES_OPTION,
    scenario: Path | None = PRICES_SCENARIO_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Show the prices the cost model uses and where each comes from."""
    from ragortune.cost.analysis import price_book_for
    from ragortune.cost.scenario import load_scenario

    scn = load_scenario(scenario) if scenario is not None else None
    book = price_book_for(scn, scenario, prices)
    if name is None:
        cat = book.catalogue()
        if json_output:
            emit_json(cat)
            return
        console.print(f"Inference and embedding prices: genai-prices {cat['genai_prices_version']}"
                      " (offline); ask `ragortune prices MODEL` for one model.")
        console.print(table(
            ("provider", "model", "train", "ft input", "ft output", "source", "as of"),
            [(row["provider"], row["model"], f"{row['train_mtok']:.2f}",
              f"{row['ft_input_mtok']:.2f}", f"{row['ft_output_mtok']:.2f}", row["source"],
              row["as_of"]) for row in cat["finetune"]],
            numeric=("train", "ft input", "ft output", "as of"), optional=("source",),
            title="Fine-tuning prices (USD per 1M tokens)"))
        console.print(table(
            ("gpu", "provider", "hour", "memory", "source", "as of"),
            [(row["gpu"], row["provider"], f"{row['hour']:.4f}", f"{row['memory_gb']} GB",
              row["source"], row["as_of"]) for row in cat["gpus"]],
            numeric=("hour", "memory", "as of"), optional=("source",),
            title="GPU prices (USD per GPU-hour)"))
        for layer in cat["overrides"]:
            console.print(f"overrides from {layer['origin']}: {len(layer['models'])} models, "
                          f"{len(layer['gpus'])} GPUs")
        return
    info = book.describe(name)
    if not info["found"]:
        raise InputError(f"no price known for '{name}' (model or GPU); check the spelling, run "
                         "`ragortune prices` for the packaged tables, or add an override")
    if json_output:
        emit_json(info)
        return
    rows = list(info["prices"].items()) + [("gpu_hour", info["gpu_hour"])]
    console.print(table(
        ("price", "USD", "unit", "from", "ref", "as of"),
        [(key, f"{p['usd']:g}", p["unit"], p["source"], p["ref"], p["as_of"] or "")
         for key, p in rows if p is not None],
        numeric=("USD", "as of"), optional=("ref", "from"), title=f"Prices for {name}"))
    missing = [k for k, p in info["prices"].items() if p is None]
    if missing and any(info["prices"].values()):
        console.print(f"not known: {', '.join(missing)} (add overrides to use this model there)")


SHORT = {"rag": "RAG", "prompting": "Prompting", "ft_api": "FT-API",
         "ft_self_hosted": "FT-self", "hybrid": "Hybrid", "hybrid_self_hosted": "Hybrid-self"}
GROUPS = {
    "embedding": ("embedding_initial", "embedding_updates", "query_embedding"),
    "vector store": ("vector_storage", "vector_reads", "vector_writes"),
    "prompt tokens": ("prompt_tokens",), "completion tokens": ("completion_tokens",),
    "training": ("training",), "FT hosting": ("hosting",), "GPU serving": ("gpu_serving",),
    "labour": ("labour",),
}


def _cost_tables(data: dict[str, Any]) -> None:
    h = data["scenario"]["horizon_months"]
    opts = data["options"]
    names = [SHORT[name] + (" *" if name == data["cheapest"] else "") for name in opts]
    rows = [(f"total, {h} months", *(_money(o["total"]) for o in opts.values())),
            ("month 1", *(_money(o["first_month"]) for o in opts.values())),
            (f"month {h}", *(_money(o["last_month"]) for o in opts.values()))]
    rows += [(f"  {group}", *(_money(sum(o["lines"][ln]["total"] for ln in lines))
                              for o in opts.values())) for group, lines in GROUPS.items()]
    console.print(table(
        ("cost line", *names), rows, numeric=names, styles={0: "bold"},
        title=f"{data['scenario']['name']}: cost over {h} months (* = cheapest)",
        caption="Prompting = base model, cached instructions / structured outputs; FT-API = "
                "fine-tuned model on the API; FT-self = fine-tuned open model on rented GPUs; "
                "Hybrid = fine-tuned model + RAG"))
    rows = []
    for p in data["break_even"]:
        vol = p["break_even_queries_per_month"]
        rows.append((f"{SHORT[p['a']]} vs {SHORT[p['b']]}", SHORT[p["cheaper_at_horizon"]],
                     _money(abs(p["difference_at_horizon"])),
                     str(p["break_even_month"] or "-"), f"{vol:,.0f}" if vol else "-",
                     SHORT[p["cheaper_above_break_even"]] if vol else "-"))
    console.print(table(
        ("pair", f"cheaper at {h} mo", "by", "from month", "volume flip (q/mo)", "above it"),
        rows, numeric=("by", "from month", "volume flip (q/mo)"),
        title="Break-even between each pair"))
    factors = sorted({row["factor"] for row in data["sensitivity"]})
    rows = []
    for driver in dict.fromkeys(row["driver"] for row in data["sensitivity"]):
        cells = {row["factor"]: row for row in data["sensitivity"] if row["driver"] == driver}
        rows.append((driver, *(f"{SHORT[cells[f]['cheapest']]} "
                               f"{_compact(cells[f]['totals'][cells[f]['cheapest']])}"
                               for f in factors)))
    console.print(table(("driver", *(f"x{f:g}" for f in factors)), rows,
                        title="Sensitivity: cheapest option with one driver scaled"))
    a = data["assumptions"]
    tok = a["tokens_per_query"]
    console.print(
        f"tokens/query: RAG {tok['rag']['prompt']:,.0f} prompt ({tok['rag']['source']}), "
        f"{a['context_tokens_per_query']:,} of them retrieved context; fine-tuned "
        f"{tok['ft']['prompt']:,.0f} prompt.\n"
        f"training: {a['dataset_tokens_initial']:,.0f} dataset tokens x {a['epochs']} epochs = "
        f"{a['training_tokens_per_run_initial']:,.0f} tokens per run: "
        f"{_money(a['training_cost_per_epoch_initial'])} per epoch, "
        f"{_money(a['training_cost_per_run_initial'])} per run; "
        f"{a['ft_retrains_per_month']:.2f} retrains/month (fine-tuned), "
        f"{a['hybrid_retrains_per_month']:.2f} (hybrid).\n"
        f"self-hosted: {a['gpus_serving_first_month']:.0f} GPU(s) sized for "
        f"{a['peak_to_average']:g}x peak traffic, {a['gpu_hours_per_month_first']:,.0f} "
        f"GPU-hours in month 1; training {a['self_hosted_training_gpu_hours_per_run_initial']:,.1f}"
        f" GPU-hours ({_money(a['self_hosted_training_cost_per_run_initial'])}) a run for a "
        f"{a['self_hosted_model']['params_b']:g}B {a['self_hosted_model']['train_method']} "
        f"({a['self_hosted_model']['train_gpus']} GPU(s); compute from "
        f"{a['self_hosted_model']['tflops_source']}, MFU {a['self_hosted_model']['train_mfu']:g})"
        ".", highlight=False, markup=False)
    _warnings(data.get("warnings", []))


def _warnings(warnings: list[str]) -> None:
    for w in warnings:
        console.print(f"WARNING: {w}", style="yellow", highlight=False, markup=False)


@app.command("cost")
def cost_command(
    scenario: Path = SCENARIO_OPTION,
    evidence: Path | None = EVIDENCE_OPTION,
    prices: Path | None = PRICES_OPTION,
    png: Path | None = PNG_OPTION,
    no_png: bool = NO_PNG_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """TCO per option (RAG, fine-tuned API, fine-tuned self-hosted, hybrid) with break-evens."""
    analysis, ev = _analyse(scenario, evidence, prices)
    data = analysis.to_dict(str(scenario))
    data["png"] = None
    if not no_png:
        from ragortune.decide import decide

        path = png if png is not None else Path(f"{scenario.stem}.cost.png")
        data["png"] = _chart(analysis, decide(analysis, ev), path)
    if json_output:
        emit_json(data)
        return
    _cost_tables(data)
    if data["png"]:
        console.print(f"chart: {data['png']}", highlight=False)


def _chart(analysis: Any, decision: Any, path: Path) -> str:
    from ragortune.cost.plot import plot_cumulative
    from ragortune.decide import candidates

    plot_cumulative(analysis.simulation, analysis.pairs, path, title=analysis.model.scenario.name,
                    bands=decision.monte_carlo["bands"], pick=decision.option,
                    options=candidates(analysis.model))
    return str(path)


def _mc_table(data: dict[str, Any]) -> None:
    mc = data["monte_carlo"]
    rows = [(SHORT[name] + (" <- pick" if name == data["option"] else ""), _money(o["p10"]),
             _money(o["p50"]), _money(o["p90"]), f"{o['win_share']:.0%}")
            for name, o in mc["options"].items() if o["candidate"]]
    console.print(table(("option", "P10", "P50", "P90", "win"), rows,
                        numeric=("P10", "P50", "P90", "win"),
                        title=f"Monte Carlo: {mc['draws']:,} draws (seed {mc['seed']}), total "
                              "over the horizon; win = share of draws where the decision "
                              "picks it"))
    console.print("uncertain inputs: " + "; ".join(
        f"{i['label']} {i['low']:,.4g} to {i['high']:,.4g} ({i['basis']})"
        for i in mc["inputs"]), highlight=False, markup=False)


@app.command("decide")
def decide_command(
    scenario: Path = SCENARIO_OPTION,
    evidence: Path | None = EVIDENCE_OPTION,
    prices: Path | None = PRICES_OPTION,
    png: Path | None = DECIDE_PNG_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Recommend prompting, RAG, fine-tuning or hybrid: confidence, ranked reasons, flips."""
    from ragortune.decide import NAMES, decide, money

    analysis, ev = _analyse(scenario, evidence, prices)
    decision = decide(analysis, ev)
    data = decision.to_dict()
    data["scenario"] = {"name": analysis.model.scenario.name, "path": str(scenario)}
    data["png"] = _chart(analysis, decision, png) if png is not None else None
    if json_output:
        emit_json(data)
        return
    serving = f", served {decision.serving}" if decision.recommendation in (
        "fine-tuning", "hybrid") else ""
    mc = data["monte_carlo"]
    console.print(f"Recommendation: {NAMES[decision.recommendation]}{serving}  "
                  f"({analysis.model.scenario.name})", style="bold", highlight=False,
                  markup=False)
    verdict = ("TOO CLOSE TO CALL: " if mc["too_close_to_call"] else "") + (
        f"{SHORT[decision.option]} wins {mc['confidence']:.0%} of {mc['draws']:,} draws "
        f"(stated level {mc['level']:.0%})")
    console.print(verdict, highlight=False, markup=False)
    if mc["settled_by"] and (mc["too_close_to_call"] or mc["confidence"] < 0.95):
        console.print(f"  {mc['settled_by']['text']}", highlight=False, markup=False)
    if decision.runner_up is not None:
        gap = decision.premium
        console.print(f"Against the runner-up, {SHORT[decision.runner_up]}: "
                      f"{'a premium' if gap > 0 else 'a saving'} of {money(abs(gap))} over "
                      f"{analysis.model.scenario.horizon_months} months.", highlight=False,
                      markup=False)
    if decision.first_step:
        console.print(f"First: {decision.first_step}", style="yellow", highlight=False,
                      markup=False)
    if decision.revisit:
        console.print(decision.revisit, style="yellow", highlight=False, markup=False)
    _mc_table(data)
    console.print("Reasons, what decides first (decisive = removing it changes the answer):")
    for r in data["reasons"]:
        # 0 points (an accuracy gap within the noise, "treated as a tie") weighs on neither side
        side = "for" if r["supports"] else "neither" if r["favors"] == "neither" else "against"
        tag = "decisive, " if r["decisive"] else ""
        extra = f" [{r['threshold']}]" if r["threshold"] else ""
        console.print(f"  {r['rank']}. ({tag}{side}, {r['points']:+.1f}) {r['text']}{extra}",
                      highlight=False, markup=False)
    console.print("What would change it:")
    if not data["sensitivity"]:
        console.print("  - No single driver moved x0.01 to x100 (or its plausible span) "
                      "changes the recommendation.", highlight=False, markup=False)
    if True:
        for row in data["sensitivity"]:
            for side in ("down", "up"):
                if row[side]:
                    console.print(f"  - {row[side]['text']}", highlight=False, markup=False)
        for f in data["flips"]:
            console.print(f"  - {f['text']}", highlight=False, markup=False)
    _warnings(data["warnings"])
    if data["png"]:
        console.print(f"chart: {data['png']}", highlight=False)
    if decision.matches_expected is not None:
        verdict = "matches" if decision.matches_expected else "DIFFERS FROM"
        exp = decision.expected
        wanted = exp["recommendation"] + (f" ({exp['serving']})" if exp.get("serving") else "")
        console.print(f"{verdict} the scenario's expected answer: {wanted}", highlight=False,
                      markup=False)
