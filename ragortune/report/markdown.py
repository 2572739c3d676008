"""report.md: the report's content for pull requests and wikis (GitHub-flavoured tables).

Text from data is escaped: Markdown punctuation, table pipes and HTML brackets, so an
answer can neither break a table nor inject markup. Charts are the HTML report's; here the
same numbers are tables.
"""

from __future__ import annotations

import re

from ragortune import __version__
from ragortune.report import format as fmt
from ragortune.report.model import OPTION_NAMES, ReportModel

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text: object) -> str:
    """One line of literal text, safe inside a table cell."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _SPECIAL.sub(r"\\\1", out)
    return " ".join(out.split())


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def render_markdown(model: ReportModel) -> str:
    v = model.verdict
    scenario = v.scenario if v and v.scenario else (model.cost.scenario if model.cost else "")
    out = [f"# ragortune report{': ' + md(scenario) if scenario else ''}", ""]
    missing = [name for name, here in model.present.items() if not here]
    if model.synthesised:
        out += ["The questions were synthesised from the documents (`ragortune synth`).", ""]
    if missing:
        out += [f"Not in the folder: {', '.join(missing)}.", ""]
    for section in (_verdict, _arms, _retrieval, _cost, _sensitivity, _disagreements, _run):
        out += section(model)
    out.append(f"Made by ragortune {__version__}.")
    return "\n".join(out) + "\n"


def _verdict(model: ReportModel) -> list[str]:
    """The recommendation, its confidence and ranked reasons."""
    v = model.verdict
    out: list[str] = []
    if v:
        out.append(f"## Recommendation: {md(v.label)}")
        out.append("")
        if v.confidence:
            out += [f"Confidence: {md(v.confidence)}", ""]
        if v.too_close:
            out += [f"**Too close to call.** {md(v.settled_by or '')}", ""]
        if v.runner_up and v.premium is not None:
            verb = "saves" if v.premium < 0 else "costs"
            out += [(f"Against the runner-up, {md(OPTION_NAMES.get(v.runner_up, v.runner_up))}: "
                    f"{verb} {fmt.money(abs(v.premium))} over the horizon."), ""]
        if v.revisit:
            out += [f"Revisit: {md(v.revisit)}", ""]
        if v.win_share:
            out += ["Win share: " + ", ".join(f"{md(OPTION_NAMES.get(o, o))} {fmt.share(s)}"
                                             for o, s in v.win_share.items()), ""]
        if v.first_step:
            out += [f"First: {md(v.first_step)}", ""]
        out.append("Reasons, ranked by what decides:")
        out.append("")
        for r in v.reasons:
            number = fmt.reason_number(r.value, r.dollars)
            side = r.side + (", decisive" if r.decisive else "")
            label = f"{r.rule} = {number}" if r.rule and number else number
            out.append(f"{r.rank}. ({side}{', ' + md(label) if label else ''}) {md(r.text)}")
        out.append("")
        if v.flips:
            out += ["What would flip it:", ""] + [f"- {md(f)}" for f in v.flips] + [""]
        if v.warnings:
            out += ["Warnings:", ""] + [f"- {md(w)}" for w in v.warnings] + [""]
    else:
        out += ["## No decision in this folder", "", "decision.json is missing.", ""]

    return out


def _arms(model: ReportModel) -> list[str]:
    """Per-arm figures with their intervals, then the paired tests."""
    out: list[str] = []
    out += ["## The arms, measured", ""]
    if model.training_protocol:
        out += [f"Fine-tuned arms: {md(model.training_protocol)}.", ""]
    if model.arms:
        rows = []
        for a in model.arms:
            latency = (fmt.NOT_MEASURED if a.latency_p50_ms is None else
                       f"{fmt.number(a.latency_p50_ms)} / {fmt.number(a.latency_p95_ms)} ms")
            tokens = (fmt.NOT_MEASURED if a.prompt_tokens is None else
                      f"{fmt.number(a.prompt_tokens)} + {fmt.number(a.completion_tokens)}")
            per_correct = (fmt.money(a.cost_per_correct) if a.cost_per_correct is not None
                           else "no cost option" if a.name == "base" else fmt.NOT_MEASURED)
            rows.append([md(a.name), md(fmt.measure(a.accuracy)),
                         md(fmt.measure(a.accuracy_unseen_phrasing)),
                         md(fmt.measure(a.accuracy_unseen_fact)), md(fmt.measure(a.accuracy_seen)),
                         md(f"{fmt.measure(a.abstention_precision)} / "
                            f"{fmt.measure(a.abstention_recall)}"),
                         md(fmt.measure(a.stale_rate)), md(fmt.measure(a.new_fact_accuracy)),
                         latency, tokens, md(per_correct)])
        out += _table(["arm", "accuracy (unseen) \\[95%\\]", "unseen phrasings of trained facts",
                       "unseen facts", "accuracy (seen)", "abstention precision / recall",
                       "stale after update", "new facts right", "latency p50 / p95",
                       "tokens/query", "cost per correct answer"], rows)
        if any(a.accuracy_unseen_phrasing.value is not None for a in model.arms):
            out += [fmt.SUBSET_NOTE, ""]
    else:
        out += ["Answers not measured.", ""]
    if model.paired_tests:
        out += ["Paired tests (exact McNemar on the same questions, Holm-adjusted):", ""]
        out += _table(["questions", "pair", "n", "difference \\[95%\\]", "p (Holm)", "verdict"],
                      [[md(t.subset), md(f"{t.a} vs {t.b}"), fmt.number(t.n),
                        md(fmt.difference(t)), fmt.p_value(t.p_holm),
                        ("**" + md(t.verdict) + "**") if t.significant else md(t.verdict)]
                       for t in model.paired_tests])
    return out


def _retrieval(model: ReportModel) -> list[str]:
    """Retrieval metrics."""
    out: list[str] = []
    out += ["## Retrieval", ""]
    if model.retrieval:
        out += _table(["metric", "value"], [[md(k), md(fmt.measure(m, 3))]
                                            for k, m in model.retrieval.items()])
    else:
        out += ["Retrieval metrics not measured.", ""]

    return out


def _cost(model: ReportModel) -> list[str]:
    """Totals with P10-P90 and break-evens."""
    v = model.verdict
    out: list[str] = []
    out += ["## Cost over time", ""]
    if model.cost:
        pick = v.option if v else None
        shares = v.win_share if v else {}
        rows = [[md(c.label) + (" **(pick)**" if c.option == pick else ""), fmt.money(c.total),
                 f"{fmt.money(c.p10[-1])} – {fmt.money(c.p90[-1])}" if c.p10 and c.p90 else "-",
                 fmt.share(shares[c.option]) if c.option in shares else "-"]
                for c in model.cost.curves]
        out += _table(["option", f"total over {model.cost.horizon_months} months", "P10 – P90",
                       "wins"], rows)
        rows = [[md(f"{OPTION_NAMES.get(p.a, p.a)} vs {OPTION_NAMES.get(p.b, p.b)}"),
                 md(OPTION_NAMES.get(p.cheaper, p.cheaper)), str(p.month or "never"),
                 fmt.number(p.volume) if p.volume else "-"] for p in model.cost.break_even]
        out += _table(["pair", "cheaper at the horizon", "break-even month",
                       "volume flip (queries/month)"], rows)
    else:
        out += ["Cost not measured.", ""]

    return out


def _sensitivity(model: ReportModel) -> list[str]:
    """What moves the decision, then the cost-only sweep."""
    out: list[str] = []
    out += ["## Sensitivity", ""]
    if model.sensitivity is not None:
        if model.sensitivity:
            out += _table(["driver", "move", "then"], [[md(s.driver), md(s.change), md(s.outcome)]
                                                      for s in model.sensitivity])
        else:
            out += [("No single driver, moved across its swept range, changes the "
                    "recommendation."), ""]
    if model.cost_sensitivity:
        out += ["Cheapest option with one cost driver scaled (the cost model alone):", ""]
        cols, grid = fmt.pivot(model.cost_sensitivity)
        out += _table(["driver", *map(md, cols)],
                      [[md(d), *("" if s is None else (f"**{md(s.outcome)}**" if s.flips
                                                         else md(s.outcome)) for s in cells)]
                       for d, cells in grid])
    if model.sensitivity is None and not model.cost_sensitivity:
        out += ["Sensitivity not measured.", ""]

    return out


def _disagreements(model: ReportModel) -> list[str]:
    """The questions where the arms' verdicts differ."""
    out: list[str] = []
    out += ["## Where the arms disagree", ""]
    if model.disagreements:
        arms = list(dict.fromkeys(arm for d in model.disagreements for arm in d.answers))
        rows = []
        for d in model.disagreements:
            cells = []
            for arm in arms:
                ok = d.correct.get(arm)
                mark = "✓ " if ok else ("✗ " if ok is False else "")
                cited = f" (cited: {md(d.cited[arm])})" if d.cited.get(arm) else ""
                cells.append(mark + md(d.answers.get(arm, "")) + cited)
            rows.append([md(d.question), md(d.gold) if d.gold is not None else "not recorded",
                         *cells])
        out += [f"{len(model.disagreements)} of {model.questions_asked} questions.", ""]
        out += _table(["question", "gold", *map(md, arms)], rows)
    elif model.present.get("answers.csv"):
        out += [f"The arms agree on all {model.questions_asked} questions.", ""]
    else:
        out += ["Per-question answers not recorded.", ""]

    return out


def _run(model: ReportModel) -> list[str]:
    """Provenance: scenario, settings, data, versions."""
    out: list[str] = []
    out += ["## How this was measured", ""]
    for section, rows in model.run.items():
        out += [f"### {md(section)}", ""]
        out += _table(["key", "value"], [[md(k), md(val)] for k, val in rows.items()])
    if not model.run:
        out += ["No run record in the folder.", ""]
    return out
