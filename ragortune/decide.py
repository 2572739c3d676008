"""Scenario + costs + evidence -> prompting, RAG, fine-tuning or hybrid, with the reasons that
decide it, how sure it is, and what would change it.

Two questions, as practitioners ask them: where do the *facts* live (retrieval or weights), and
does the *behaviour* (format, style, persona) need training or can prompting hold it? Each rule
adds signed points to one axis and cites its number; most rules are costs compared on a log
scale, so they grow smoothly with scale instead of firing at a cliff. The serving (API or
self-hosted) is the cheaper of the two for the chosen arrangement. The answer is then re-run on
seeded draws of every uncertain driver (Monte Carlo) to say how often it wins.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ragortune.cost.analysis import CostAnalysis
from ragortune.cost.breakeven import retrain_break_even
from ragortune.cost.measured import Evidence
from ragortune.cost.montecarlo import LABELS as INPUT_LABELS
from ragortune.cost.montecarlo import drivers_for, sample, uncertain_inputs
from ragortune.cost.tco import LABELS, CostModel, Drivers, Simulation

LATENCY_SENSITIVE_MS = 800.0
SHORT_QUESTION_TOKENS = 100
ACCURACY_MARGIN = 0.05
RECALL_POOR = 0.6
MRR_POOR = 0.3
MEMORISATION_HALF = 2.0  # source tokens per training token at which half the facts are at risk
STALE_POINTS_PER_SHARE = 10.0  # 10 % of knowledge stale = 1 point, capped at 3
BEHAVIOUR_NEEDS = ("format", "style", "persona")
OPTIONS_OF = {"rag": ("rag",), "prompting": ("prompting",),
              "fine-tuning": ("ft_api", "ft_self_hosted"),
              "hybrid": ("hybrid", "hybrid_self_hosted")}
NAMES = {"rag": "RAG", "prompting": "Prompting / structured outputs (with prompt caching)",
         "fine-tuning": "Fine-tuning", "hybrid": "Hybrid (fine-tune for behaviour + RAG for facts)"}


@dataclass(frozen=True)
class Reason:
    rule: str
    axis: str  # "facts": + retrieval, - weights; "behaviour": + train it, - prompt it
    points: float
    text: str
    value: float | None = None
    dollars: float = 0.0  # the money the reason rests on (0 for quality-only reasons)
    threshold: str | None = None  # where a gate fires, and how far the scenario is from it

    @property
    def favors(self) -> str:
        if self.points == 0:
            return "neither"  # stated, weighed at nothing (e.g. a gap within the noise)
        if self.axis == "facts":
            return "retrieval" if self.points > 0 else "weights"
        return "training" if self.points > 0 else "prompting"


@dataclass(frozen=True)
class Decision:
    recommendation: str
    serving: str
    option: str
    first_step: str | None
    scores: dict[str, float]
    reasons: list[Reason]
    decisive: list[str]
    flips: list[dict[str, Any]]
    totals: dict[str, float]
    runner_up: str | None
    monte_carlo: dict[str, Any]
    sensitivity: list[dict[str, Any]]
    revisit: str | None = None
    warnings: list[str] = field(default_factory=list)
    expected: dict[str, Any] | None = None
    evidence_keys: list[str] = field(default_factory=list)

    @property
    def matches_expected(self) -> bool | None:
        if self.expected is None:
            return None
        serving = self.expected.get("serving")
        return (self.expected["recommendation"] == self.recommendation
                and (serving is None or serving == self.serving))

    @property
    def premium(self) -> float | None:
        """The pick's total minus the runner-up's (negative = a saving)."""
        if self.runner_up is None:
            return None
        return self.totals[self.option] - self.totals[self.runner_up]

    def to_dict(self) -> dict[str, Any]:
        """The `decide --json` document (schema in docs/cost.md)."""
        return {
            "recommendation": self.recommendation,
            "serving": self.serving,
            "option": self.option,
            "confidence": self.monte_carlo["confidence"],
            "too_close_to_call": self.monte_carlo["too_close_to_call"],
            "first_step": self.first_step,
            "revisit": self.revisit,
            "scores": {k: round(v, 2) for k, v in self.scores.items()},
            "runner_up": self.runner_up,
            "premium_over_runner_up": None if self.premium is None else round(self.premium, 2),
            "reasons": [{"rank": i + 1, **asdict(r), "points": round(r.points, 2),
                         "dollars": round(r.dollars, 2), "favors": r.favors,
                         "supports": supports(r, self.recommendation),
                         "decisive": r.rule in self.decisive}
                        for i, r in enumerate(self.reasons)],
            "flips": self.flips,
            "sensitivity": self.sensitivity,
            "monte_carlo": self.monte_carlo,
            "totals": {k: round(v, 2) for k, v in self.totals.items()},
            "warnings": self.warnings,
            "expected": self.expected,
            "matches_expected": self.matches_expected,
            "evidence_keys_read": self.evidence_keys,
        }


def supports(reason: Reason, recommendation: str) -> bool:
    if reason.points == 0:
        return False
    if reason.axis == "facts":
        return (reason.points > 0) == (recommendation != "fine-tuning")
    return (reason.points > 0) == (recommendation in ("fine-tuning", "hybrid"))


def sig2(x: float) -> float:
    """Round to two significant figures: flip points are estimates, not measurements."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, 1 - math.floor(math.log10(abs(x))))


def money(x: float) -> str:
    """Dollars to two significant figures ($24,000, $0.02)."""
    v = sig2(x)
    return f"${v:,.0f}" if abs(v) >= 10 else f"${v:,.2g}"


def count(x: float) -> str:
    return f"{sig2(x):,.0f}" if abs(x) >= 10 else f"{sig2(x):g}"


def _log_points(expensive: float, cheap: float) -> float:
    """+3 .. -3 for how many times cheaper `cheap` is: 1 point per doubling, smooth, no bands."""
    if expensive <= 0 or cheap <= 0:
        return 0.0
    return float(np.clip(math.log2(expensive / cheap), -3.0, 3.0))


# -- the rules ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _View:
    """What the rules read: one simulation (one draw or the point) and the evidence."""

    model: CostModel
    sim: Simulation
    evidence: Evidence | None

    def best(self, rec: str) -> str:
        tot = self.sim.totals()
        return min(OPTIONS_OF[rec], key=tot.get)

    def cost(self, rec: str) -> float:
        return self.sim.totals()[self.best(rec)]


def _line_gap(v: _View, a: str, b: str, top: int = 2) -> str:
    """The cost lines that make `a` dearer than `b`, biggest first."""
    la, lb = v.sim.options[a].lines, v.sim.options[b].lines
    gaps = sorted(((la[k].sum() - lb[k].sum(), k) for k in la), reverse=True)
    parts = [f"{k.replace('_', ' ')} {money(g)}" for g, k in gaps[:top] if g > 0]
    return ", ".join(parts)


def _behaviour_rules(v: _View, facts: bool) -> list[Reason]:
    p, t = v.model.scenario.profile, v.model.scenario.traffic
    needs = [n for n in p.needs if n in BEHAVIOUR_NEEDS]
    if not needs:
        return []
    what = " and ".join(needs)
    h = v.model.scenario.horizon_months
    prompted, trained = ("rag", "hybrid") if facts else ("prompting", "fine-tuning")
    c_p, c_t = v.cost(prompted), v.cost(trained)
    out = []
    if p.behaviour_by_prompting == "fails":
        out.append(Reason("prompting_fails_behaviour", "behaviour", 6.0, (
            f"The scenario records that prompting does not hold the {what} "
            f"(profile.behaviour_by_prompting = \"fails\"): it has to be trained in."),
            None, 0.0, "gate: only \"fails\" fires it"))
    elif p.behaviour_by_prompting == "works":
        out.append(Reason("prompting_holds_behaviour", "behaviour", -3.0, (
            f"Prompting already holds the {what} (profile.behaviour_by_prompting = "
            f"\"works\"): training buys nothing the prompt does not."), None, 0.0))
    else:
        out.append(Reason("prompting_first", "behaviour", -1.0, (
            f"Prompting has not been tested for the {what}: instructions with prompt caching "
            f"(and structured outputs for a schema) come first; measure adherence before "
            f"paying for a dataset."), None, 0.0))
    pts = _log_points(c_p, c_t)
    diff = c_p - c_t
    saved = (t.system_tokens - t.ft_system_tokens) * v.sim.derived["queries_first_month"]
    out.append(Reason("behaviour_cost", "behaviour", pts, (
        f"Over {h} months {LABELS[v.best(trained)]} costs {money(c_t)} and "
        f"{LABELS[v.best(prompted)]} {money(c_p)}: training "
        f"{'saves' if diff > 0 else 'costs'} {money(abs(diff))}"
        f"{' (' + _line_gap(v, v.best(trained), v.best(prompted)) + ')' if diff < 0 else ''}; "
        f"it drops {t.system_tokens - t.ft_system_tokens:,} instruction tokens a call, "
        f"{count(saved / 1e6)}M tokens in month 1."), c_p / c_t if c_t else None, abs(diff)))
    if p.pre_revenue:
        ft1 = v.sim.options[v.best(trained)].monthly[0]
        out.append(Reason("pre_revenue_defer_training", "behaviour", -3.0, (
            f"Pre-revenue: defer training's {money(ft1)} first month (dataset build + "
            f"training) until there are users; prompt for the {what} meanwhile."), float(ft1),
            float(ft1)))
    return out


def _facts_rules(v: _View, train_behaviour: bool) -> list[Reason]:
    s = v.model.scenario
    t, p, d = s.traffic, s.profile, v.sim.derived
    ev, h = v.evidence, s.horizon_months
    retrieval = "hybrid" if train_behaviour else "rag"
    ft, rt = v.best("fine-tuning"), v.best(retrieval)
    c_ft, c_rt = v.cost("fine-tuning"), v.cost(retrieval)
    out = []
    diff = c_ft - c_rt
    dearer, cheaper = (ft, rt) if diff > 0 else (rt, ft)
    why = _line_gap(v, dearer, cheaper)
    retrains = ""
    if dearer == ft and d["ft_retrains_per_month"] > 0:
        fixed = d["ft_retrain_cadence_fixed"]
        retrains = (f"; it retrains {count(d['ft_retrains_per_month'])} times a month "
                    + ("(cadence fixed in the scenario)" if fixed else
                       f"because {d['knowledge_per_month']:.0%} of the corpus is new or "
                       f"rewritten each month (growth counts as change)"))
    out.append(Reason("total_cost", "facts", _log_points(c_ft, c_rt), (
        f"Over {h} months {LABELS[ft]} costs {money(c_ft)} and {LABELS[rt]} {money(c_rt)}: "
        f"{LABELS[dearer]} is {money(abs(diff))} dearer"
        f"{' (' + why + ')' if why else ''}{retrains}."), c_ft / c_rt if c_rt else None,
        abs(diff)))

    dataset = s.finetune.examples * s.finetune.tokens_per_example
    ratio = d["corpus_tokens_final"] / dataset
    risk = ratio / (ratio + MEMORISATION_HALF)
    if 3 * risk >= 0.05:
        out.append(Reason("knowledge_in_weights", "facts", 3 * risk, (
            f"Facts held in weights: the fine-tuning set ({count(dataset / 1e6)}M tokens an "
            f"epoch) must carry {count(d['corpus_tokens_final'] / 1e6)}M tokens of knowledge, "
            f"{count(ratio)} source tokens per training token; about {risk:.0%} of facts are at "
            f"risk of not being recalled (smooth risk r/(r+{MEMORISATION_HALF:g}), no cliff)."),
            ratio))

    measured_stale = ev.arm("ft").stale_rate if ev is not None else None
    if measured_stale is not None:
        out.append(Reason("fine_tuned_arm_goes_stale", "facts",
                          min(3.0, STALE_POINTS_PER_SHARE * measured_stale), (
            f"Measured: after a knowledge update the fine-tuned arm answered "
            f"{measured_stale:.0%} of the changed questions with stale facts (the measurement "
            f"replaces the cadence estimate)."), measured_stale))
    elif d["ft_average_stale_share"] > 0:
        stale = d["ft_average_stale_share"]
        cadence = (f"retrains every {count(1 / d['ft_retrains_per_month'])} months (fixed in "
                   f"the scenario)" if d["ft_retrains_per_month"] > 0 else "never retrains")
        out.append(Reason("retraining_lags_changes", "facts",
                          min(3.0, STALE_POINTS_PER_SHARE * stale), (
            f"The fine-tuned model {cadence} while {d['knowledge_per_month']:.0%} of the corpus "
            f"is new or rewritten each month: on average {stale:.0%} of the knowledge is newer "
            f"than the model."), stale))
    if p.multi_domain:
        out.append(Reason("multi_domain_agent", "facts", 2.0, (
            "The assistant spans several domains: one retrieval index per source serves them "
            "all, while fine-tuning needs a dataset and a retrain per domain."), None))
    if p.pre_revenue:
        r1, f1 = v.sim.options[rt].monthly[0], v.sim.options[ft].monthly[0]
        out.append(Reason("pre_revenue", "facts", 2.0, (
            f"Pre-revenue, judged on today's {count(d['queries_first_month'])} queries a month: "
            f"{LABELS[rt]} costs {money(r1)} in month 1 against {money(f1)} for fine-tuning, "
            f"and it is cheap to change course."), float(r1), float(max(f1 - r1, 0.0))))
    if (p.latency_budget_ms is not None and p.latency_budget_ms <= LATENCY_SENSITIVE_MS
            and t.question_tokens <= SHORT_QUESTION_TOKENS):
        rag_tok, ft_tok = d["tokens_per_query"]["rag"], d["tokens_per_query"]["ft"]
        text = (f"Latency budget {p.latency_budget_ms:.0f} ms for short {t.question_tokens}-token "
                f"questions: RAG adds a retrieval round-trip and grows every prompt from "
                f"{ft_tok['prompt']:,.0f} to {rag_tok['prompt']:,.0f} tokens.")
        points = -2.0
        p95 = ev.arm("rag").latency_p95_ms if ev else None
        if p95 is not None:
            fits = p95 <= p.latency_budget_ms
            points = -1.0 if fits else -3.0
            text += (f" Measured RAG p95 is {p95:.0f} ms, "
                     f"{'within' if fits else 'over'} the budget.")
        out.append(Reason("latency_sensitive_short_queries", "facts", points, text,
                          p.latency_budget_ms, 0.0,
                          f"fires at a budget <= {LATENCY_SENSITIVE_MS:.0f} ms; this one is "
                          f"{count(LATENCY_SENSITIVE_MS - p.latency_budget_ms)} ms under"))
    accuracy = _accuracy_reason(ev)
    if accuracy is not None:
        out.append(accuracy)
    return out


def _accuracy_reason(ev: Evidence | None) -> Reason | None:
    """RAG's and the fine-tuned arm's measured accuracy, weighed only when their paired test
    (evidence `comparisons`) finds the gap significant at the measured n: a gap within the
    noise is stated as a tie and moves nothing, in the point answer and in every Monte Carlo
    draw alike. Evidence without a paired test (version 1) counts as before, saying so."""
    if ev is None:
        return None
    rag_acc, ft_acc = ev.arm("rag").accuracy, ev.arm("ft").accuracy
    if rag_acc is None or ft_acc is None:
        return None
    gap = ft_acc - rag_acc
    if abs(gap) < ACCURACY_MARGIN:
        return None
    ahead, behind = (("fine-tuned", ft_acc), ("RAG", rag_acc)) if gap > 0 else \
        (("RAG", rag_acc), ("fine-tuned", ft_acc))
    measured = f"Measured accuracy: {ahead[0]} {ahead[1]:.2f} vs {behind[0]} {behind[1]:.2f}"
    test = ev.comparison("rag", "ft")
    if test is not None:
        p = test.get("p_holm", test.get("p_value"))
        at = (f"n={test.get('n')}, p={p:.2g}" if isinstance(p, int | float) else
              f"n={test.get('n')}")
        method = f"{test.get('method') or 'paired test'}, Holm-adjusted over the run's pairs"
        if not test.get("significant"):
            return Reason("measured_accuracy", "facts", 0.0, (
                f"{measured}: not significant at {at} ({method}); treated as a tie, it moves "
                f"nothing. More questions would settle it."), gap, 0.0,
                f"counts when the paired test is significant and the gap >= "
                f"{ACCURACY_MARGIN:.2f}; this one is {gap:+.2f} at {at}")
        measured += f", significant at {at} ({method})"
    else:
        measured += "; the evidence holds no paired test, so its significance is unknown"
    limit = f"counts from a gap of {ACCURACY_MARGIN:.2f}; this one is {gap:+.2f}"
    if gap < 0:
        return Reason("measured_accuracy", "facts", 2.0, measured + ".", gap, 0.0, limit)
    if _retrieval_poor(ev):
        return None
    return Reason("measured_accuracy", "facts", -2.0, measured + ", with retrieval working.",
                  gap, 0.0, limit)


def _combine(reasons: list[Reason], facts: bool, behaviour: bool) -> tuple[str, dict[str, float]]:
    scores = {"facts": sum(r.points for r in reasons if r.axis == "facts"),
              "behaviour": sum(r.points for r in reasons if r.axis == "behaviour")}
    train = behaviour and scores["behaviour"] > 0
    if not facts:
        return ("fine-tuning" if train else "prompting"), scores
    # A tie keeps facts in retrieval: cheaper to start and reversible.
    if scores["facts"] >= 0:
        return ("hybrid" if train else "rag"), scores
    return "fine-tuning", scores


def _evaluate(model: CostModel, sim: Simulation, evidence: Evidence | None
              ) -> tuple[str, str, list[Reason], dict[str, float]]:
    """(recommendation, option, reasons, scores) for one simulation."""
    s = model.scenario
    facts = "facts" in s.profile.needs
    behaviour = any(n in BEHAVIOUR_NEEDS for n in s.profile.needs)
    v = _View(model, sim, evidence)
    reasons = _behaviour_rules(v, facts)
    train = behaviour and sum(r.points for r in reasons) > 0
    if facts:
        reasons += _facts_rules(v, train)
    rec, scores = _combine(reasons, facts, behaviour)
    return rec, v.best(rec), reasons, scores


def candidates(model: CostModel) -> list[str]:
    """The options that can meet the needs: no facts source -> no prompting-only answer."""
    needs = model.scenario.profile.needs
    facts = "facts" in needs
    behaviour = any(n in BEHAVIOUR_NEEDS for n in needs)
    recs = (("rag", "fine-tuning") + (("hybrid",) if behaviour else ())) if facts else (
        "prompting", "fine-tuning")
    return [o for o in OPTIONS_OF["rag"] + OPTIONS_OF["prompting"] + OPTIONS_OF["fine-tuning"]
            + OPTIONS_OF["hybrid"] if any(o in OPTIONS_OF[r] for r in recs)]


def _realised(model: CostModel) -> Drivers:
    """Pre-revenue is judged on the volume it has, not on its forecast."""
    return Drivers(query_growth=0.0) if model.scenario.profile.pre_revenue else Drivers()


def _with(base: Drivers, **changes: Any) -> Drivers:
    return Drivers(**{**asdict(base), **changes})


def pick(model: CostModel, evidence: Evidence | None, drivers: Drivers | None = None) -> str:
    """The option the rules choose under `drivers` (pre-revenue: growth ignored)."""
    drivers = drivers or Drivers()
    if model.scenario.profile.pre_revenue:
        drivers = _with(drivers, query_growth=0.0)
    return _evaluate(model, model.run(drivers), evidence)[1]


# -- how sure, and what would change it -------------------------------------------------------
def monte_carlo(model: CostModel, evidence: Evidence | None, option: str) -> dict[str, Any]:
    """Seeded draws of every uncertain driver: P10/P50/P90 per option, win shares, confidence."""
    u = model.scenario.uncertainty
    inputs = uncertain_inputs(model)
    values = sample(inputs, u.draws, u.seed)
    names = list(model.run().options)
    totals = np.empty((u.draws, len(names)))
    cumulative = np.empty((u.draws, len(names), model.scenario.horizon_months))
    picks = []
    pre_revenue = model.scenario.profile.pre_revenue
    for i in range(u.draws):
        drivers = drivers_for(model, {k: float(a[i]) for k, a in values.items()})
        sim = model.run(drivers)
        for j, name in enumerate(names):
            cumulative[i, j] = sim.options[name].cumulative
        totals[i] = cumulative[i, :, -1]
        judged = model.run(_with(drivers, query_growth=0.0)) if pre_revenue else sim
        picks.append(_evaluate(model, judged, evidence)[1])
    picks_arr = np.array(picks)
    wins = {n: float(np.mean(picks_arr == n)) for n in names}
    confidence = wins[option]
    settle = _settling_driver(inputs, values, picks_arr == option, option, picks_arr)
    pct = np.percentile(totals, [10, 50, 90], axis=0)
    bands = np.percentile(cumulative, [10, 90], axis=0)
    return {
        "draws": u.draws, "seed": u.seed, "level": u.confidence,
        "confidence": round(confidence, 3),
        "too_close_to_call": confidence < u.confidence,
        "options": {n: {"p10": round(float(pct[0, j]), 2), "p50": round(float(pct[1, j]), 2),
                        "p90": round(float(pct[2, j]), 2), "win_share": round(wins[n], 3),
                        "candidate": n in candidates(model)}
                    for j, n in enumerate(names)},
        "inputs": [inp.to_dict() for inp in inputs],
        "settled_by": settle,
        "bands": {n: {"p10": bands[0, j].round(2).tolist(), "p90": bands[1, j].round(2).tolist()}
                  for j, n in enumerate(names)},
    }


def _settling_driver(inputs: list, values: dict[str, np.ndarray], won: np.ndarray, option: str,
                     picks: np.ndarray) -> dict[str, Any] | None:
    """The driver whose value best separates the draws the pick wins from those it loses."""
    if won.all() or not won.any():
        return None
    best = None
    for inp in inputs:
        x = values[inp.name]
        if np.ptp(x) == 0:
            continue
        rank = np.argsort(np.argsort(x))
        corr = float(np.corrcoef(rank, won.astype(float))[0, 1])
        if best is None or abs(corr) > abs(best[0]):
            best = (corr, inp)
    if best is None:
        return None
    corr, inp = best
    x = values[inp.name]
    split = float((x[won].mean() + x[~won].mean()) / 2)
    others, counts = np.unique(picks[~won], return_counts=True)
    rival = str(others[np.argmax(counts)])
    side = "below" if corr > 0 else "above"
    return {"driver": inp.name, "label": INPUT_LABELS[inp.name], "correlation": round(corr, 2),
            "split": sig2(split), "rival": rival, "basis": inp.basis,
            "text": (f"{INPUT_LABELS[inp.name]} settles it: {side} about {count(split)} "
                     f"{LABELS[rival]} wins more often; measure it ({inp.basis} now, "
                     f"{count(inp.low)} to {count(inp.high)}).")}


_SWEEPS = {  # driver -> (Drivers field, multiplicative?, grid)
    "queries": ("queries", True, np.geomspace(0.01, 100, 81)),
    "query_growth": ("query_growth", False, np.linspace(-0.1, 0.5, 61)),
    "change": ("change", True, np.geomspace(0.01, 100, 81)),
    "prompt": ("prompt", True, np.geomspace(0.1, 10, 41)),
    "labour": ("labour", True, np.geomspace(0.1, 10, 41)),
    "gpu_throughput": ("gpu_throughput", True, np.geomspace(0.1, 10, 41)),
    "price_drift": ("price_drift", False, np.linspace(-0.8, 0.5, 53)),
}


def decision_sensitivity(model: CostModel, evidence: Evidence | None, option: str
                         ) -> list[dict[str, Any]]:
    """Per driver: the nearest move (up and down) that changes the recommended option."""
    s = model.scenario
    base = {"queries": 1.0, "query_growth": s.traffic.growth_per_month, "change": 1.0,
            "prompt": 1.0, "labour": 1.0, "gpu_throughput": 1.0, "price_drift": 0.0}
    out = []
    for driver, (fld, mult, grid) in _SWEEPS.items():
        if driver == "change" and model.knowledge_per_month() == 0:
            continue
        now = base[driver]
        row: dict[str, Any] = {"driver": driver, "now": now, "down": None, "up": None}
        for side, cand in (("down", grid[grid < now][::-1]), ("up", grid[grid > now])):
            prev = now
            for x in cand:
                other = pick(model, evidence, Drivers(**{fld: float(x)}))
                if other != option:
                    lo, hi = prev, float(x)
                    for _ in range(20):
                        mid = math.sqrt(lo * hi) if mult and lo > 0 else (lo + hi) / 2
                        if pick(model, evidence, Drivers(**{fld: mid})) == option:
                            lo = mid
                        else:
                            hi = mid
                    row[side] = {"value": sig2(hi), "option": other,
                                 "text": _sweep_text(model, driver, hi, other)}
                    break
                prev = float(x)
        if row["down"] or row["up"]:
            out.append(row)
    return out


def _sweep_text(model: CostModel, driver: str, x: float, other: str) -> str:
    s = model.scenario
    to = f"the answer becomes {LABELS[other]}"
    if driver == "queries":
        q = s.traffic.queries_per_month
        return (f"At {count(q * x)} queries a month (now {count(q)}, x{sig2(x):g}) {to}.")
    if driver == "query_growth":
        return f"At {sig2(x):.0%} query growth a month (now " \
               f"{s.traffic.growth_per_month:.0%}) {to}."
    if driver == "price_drift":
        return f"If API prices change {sig2(x):+.0%} a year (assumed 0) {to}."
    factor = f"{x:.2f}" if 0.8 < x < 1.25 else f"{sig2(x):g}"
    what = {"change": "the change rate (share and update frequency)",
            "prompt": "the RAG prompt size", "labour": "every labour day",
            "gpu_throughput": "GPU throughput"}[driver]
    return f"With {what} x{factor} {to}."


def _flips(model: CostModel, a: CostAnalysis, option: str, runner_up: str | None
           ) -> list[dict[str, Any]]:
    s, q = model.scenario, model.scenario.traffic.queries_per_month
    flips: list[dict[str, Any]] = []
    for pair in a.pairs:
        if {pair.a, pair.b} != {option, runner_up}:
            continue
        if pair.break_even_queries_per_month is not None:
            v = pair.break_even_queries_per_month
            flips.append({"kind": "query_volume", "option": runner_up, "value": sig2(v),
                          "text": (
                f"{'Above' if pair.cheaper_above_break_even == runner_up else 'Below'} "
                f"{count(v)} queries a month (now {count(q)}, {count(abs(v / q - 1) * 100)}% "
                f"{'higher' if v > q else 'lower'}), {LABELS[runner_up]} costs less than "
                f"{LABELS[option]} over {s.horizon_months} months.")})
        if pair.break_even_month is not None:
            winner = pair.cheaper_at_horizon
            loser = pair.b if winner == pair.a else pair.a
            flips.append({"kind": "break_even_month", "option": runner_up,
                          "value": pair.break_even_month, "text": (
                f"{LABELS[winner]} is cheaper in total than {LABELS[loser]} from month "
                f"{pair.break_even_month} on; over a shorter horizon {LABELS[loser]} is.")})
    if "facts" in s.profile.needs:
        best_ft = min(("ft_api", "ft_self_hosted"), key=a.simulation.totals().get)
        r_star = retrain_break_even(model, best_ft, "rag")
        now = a.simulation.derived["ft_retrains_per_month"]
        if r_star is not None and np.isfinite(r_star):
            flips.append({"kind": "change_rate", "option": best_ft, "value": sig2(r_star),
                          "text": (
                f"{LABELS[best_ft]} matches RAG's cost at {count(r_star)} retrains a month "
                f"(knowledge updated every {count(30 / r_star)} days); the scenario needs "
                f"{count(now)}.")})
    return flips


def _revisit(model: CostModel, evidence: Evidence | None, option: str) -> str | None:
    """For a pre-revenue team with a growth forecast: when to look again, not a fleet now."""
    t = model.scenario.traffic
    if not model.scenario.profile.pre_revenue or t.growth_per_month <= 0 \
            or t.queries_per_month <= 0:
        return None
    # At the revisit point the team has revenue: judge that volume without the pre-revenue rules.
    later = copy.copy(model)
    s = model.scenario
    later.scenario = s.model_copy(update={"profile": s.profile.model_copy(
        update={"pre_revenue": False})})
    for factor in np.geomspace(1.0, 1e4, 161)[1:]:
        other = pick(later, evidence, Drivers(queries=float(factor), query_growth=0.0))
        if other != option:
            volume = t.queries_per_month * factor
            month = 1 + math.log(factor) / math.log1p(t.growth_per_month)
            return (f"Revisit at {count(volume)} queries a month (today {count(t.queries_per_month)}"
                    f"), expected in month {month:.0f} if the {t.growth_per_month:.0%}/month "
                    f"forecast holds: there {LABELS[other]} becomes the pick.")
    return (f"No volume up to {count(t.queries_per_month * 1e4)} queries a month changes the "
            f"pick: the {t.growth_per_month:.0%}/month forecast needs no revisit on cost.")


def _retrieval_poor(ev: Evidence | None) -> str | None:
    if ev is None:
        return None
    problems = []
    if ev.recall is not None and ev.recall[1] < RECALL_POOR:
        problems.append(f"{ev.recall[0]} = {ev.recall[1]:.2f} (below {RECALL_POOR:.2f})")
    if ev.mrr is not None and ev.mrr[1] < MRR_POOR:
        problems.append(f"{ev.mrr[0]} = {ev.mrr[1]:.2f} (below {MRR_POOR:.2f})")
    if not problems:
        return None
    return ("Fix retrieval first: " + ", ".join(problems) + ". The answer is often not in the "
            "retrieved context, so RAG's measured accuracy understates it; improve chunking, "
            "hybrid search or the embedder and re-run the evaluation before any fine-tuning.")


def decide(analysis: CostAnalysis, evidence: Evidence | None = None) -> Decision:
    """The recommendation for the analysed scenario, with its confidence and ranked reasons."""
    model = analysis.model
    s = model.scenario
    facts = "facts" in s.profile.needs
    behaviour = any(n in BEHAVIOUR_NEEDS for n in s.profile.needs)
    judged = model.run(_realised(model))
    rec, option, reasons, scores = _evaluate(model, judged, evidence)
    decisive = [r.rule for r in reasons
                if _combine([x for x in reasons if x is not r], facts, behaviour)[0] != rec]
    ranked = sorted(reasons, key=lambda r: (r.rule not in decisive, not supports(r, rec),
                                            -r.dollars, -abs(r.points)))
    mc = monte_carlo(model, evidence, option)
    tot = judged.totals()
    rivals = sorted(set(candidates(model)) - {option},
                    key=lambda o: (-mc["options"][o]["win_share"], tot[o]))
    runner_up = rivals[0] if rivals else None
    flips = _flips(model, analysis, option, runner_up)
    flips += [{"kind": "rule", "option": None, "value": None,
               "text": f"Without '{name}' the recommendation would change."}
              for name in decisive]
    if behaviour and s.profile.behaviour_by_prompting != "fails" and rec in ("rag", "prompting"):
        trained = "hybrid" if facts else "fine-tuning"
        alt = min(OPTIONS_OF[trained], key=tot.get)
        needs = " and ".join(n for n in s.profile.needs if n in BEHAVIOUR_NEEDS)
        flips.append({"kind": "behaviour", "option": alt, "value": sig2(tot[alt] - tot[option]),
                      "text": (
            f"If prompting cannot hold the {needs} (measure it; then set profile.behaviour_by_prompting = \"fails\"), the answer "
            f"becomes {LABELS[alt]} at {money(tot[alt] - tot[option])} more over "
            f"{s.horizon_months} months.")})
    first_step = _retrieval_poor(evidence) if facts else None
    if first_step:
        flips.append({"kind": "retrieval", "option": None, "value": RECALL_POOR, "text": (
            f"Once recall reaches {RECALL_POOR:.2f} (and MRR {MRR_POOR:.2f}), re-run the "
            f"evaluation: a measured accuracy gap can then count.")})
    return Decision(
        recommendation=rec, serving="self-hosted" if option.endswith("self_hosted") else "api",
        option=option, first_step=first_step, scores=scores, reasons=ranked,
        decisive=decisive, flips=flips, totals=tot, runner_up=runner_up, monte_carlo=mc,
        sensitivity=decision_sensitivity(model, evidence, option),
        revisit=_revisit(model, evidence, option), warnings=list(model.warnings),
        expected=s.expected.model_dump() if s.expected else None,
        evidence_keys=list(evidence.keys_read) if evidence else [],
    )
