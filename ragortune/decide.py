"""Scenario + costs + evidence → RAG, fine-tuning or hybrid, with ranked reasons and flip points.

The decision answers two questions separately, as practitioners do: where should the *facts*
live (retrieval or weights), and does the *behaviour* (format, style, persona) need training?
Facts in retrieval + trained behaviour = hybrid. Each rule adds signed points on one axis and
cites its number; measured evidence adds its own points or vetoes a rule (poor retrieval
means "fix retrieval first", never "fine-tune instead").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ragortune.cost.analysis import CostAnalysis
from ragortune.cost.breakeven import retrain_break_even
from ragortune.cost.tco import LABELS
from ragortune.evaluate.evidence import Evidence

LARGE_CORPUS_TOKENS = 1_000_000
FAST_UPDATES_PER_MONTH = 4.0  # weekly or faster
LATENCY_SENSITIVE_MS = 800.0
SHORT_QUESTION_TOKENS = 100
HIGH_VOLUME_QUERIES = 1_000_000
STABLE_CHANGE = 0.05
STALE_RATE_BAD = 0.2
STALE_SHARE_BAD = 0.1
ACCURACY_MARGIN = 0.05
RECALL_POOR = 0.6
MRR_POOR = 0.3
BEHAVIOUR_NEEDS = ("format", "style", "persona")


@dataclass(frozen=True)
class Reason:
    rule: str
    axis: str  # "facts": + retrieval, - weights; "behaviour": + fine-tune, - prompt only
    points: float
    text: str
    value: float | None = None

    @property
    def favors(self) -> str:
        return "rag" if (self.points > 0) == (self.axis == "facts") else "fine-tuning"


@dataclass(frozen=True)
class Decision:
    recommendation: str
    serving: str
    option: str
    first_step: str | None
    scores: dict[str, float]
    reasons: list[Reason]
    flips: list[dict[str, Any]]
    totals: dict[str, float]
    expected: dict[str, Any] | None = None
    evidence_keys: list[str] = field(default_factory=list)

    @property
    def matches_expected(self) -> bool | None:
        if self.expected is None:
            return None
        serving = self.expected.get("serving")
        return (self.expected["recommendation"] == self.recommendation
                and (serving is None or serving == self.serving))

    def to_dict(self) -> dict[str, Any]:
        """The `decide --json` document (schema in docs/cost.md)."""
        return {
            "recommendation": self.recommendation,
            "serving": self.serving,
            "option": self.option,
            "first_step": self.first_step,
            "scores": self.scores,
            "reasons": [{"rank": i + 1, **asdict(r), "favors": r.favors,
                         "supports": supports(r, self.recommendation)}
                        for i, r in enumerate(self.reasons)],
            "flips": self.flips,
            "totals": {k: round(v, 2) for k, v in self.totals.items()},
            "expected": self.expected,
            "matches_expected": self.matches_expected,
            "evidence_keys_read": self.evidence_keys,
        }


def supports(reason: Reason, recommendation: str) -> bool:
    if recommendation == "hybrid":
        return reason.points > 0
    return reason.favors == recommendation


def _later_mean(values: np.ndarray) -> float:
    return float(values[1:].mean()) if values.size > 1 else 0.0


def _fmt_money(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 10 else f"${x:,.2f}"


def _rules(a: CostAnalysis, ev: Evidence | None, retrieval_poor: bool) -> list[Reason]:
    s = a.model.scenario
    c, t, p = s.corpus, s.traffic, s.profile
    sim, d = a.simulation, a.simulation.derived
    tot = sim.totals()
    best_ft = min(("ft_api", "ft_self_hosted"), key=tot.get)
    facts = "facts" in p.needs
    out: list[Reason] = []

    if facts and c.change_per_month > 0 and c.updates_per_month >= FAST_UPDATES_PER_MONTH:
        ft = sim.options["ft_api"]
        upkeep = _later_mean(ft.lines["training"] + ft.lines["labour"])
        reembed = _later_mean(sim.options["rag"].lines["embedding_updates"])
        out.append(Reason("knowledge_changes_weekly", "facts", 3, (
            f"Knowledge changes every {30 / c.updates_per_month:.0f} days "
            f"({c.change_per_month:.0%} of the corpus a month): a fine-tuned model needs "
            f"{d['ft_retrains_per_month']:.1f} retrains a month ({_fmt_money(upkeep)}/month in "
            f"training and dataset work) to stay fresh; RAG re-embeds the changed text for "
            f"{_fmt_money(reembed)}/month."), c.updates_per_month))
    if facts and c.total_tokens >= LARGE_CORPUS_TOKENS:
        ratio = c.total_tokens / d["dataset_tokens_initial"]
        out.append(Reason("large_corpus", "facts", 2, (
            f"The corpus holds {c.total_tokens / 1e6:,.1f}M tokens ({c.documents:,} documents), "
            f"{ratio:,.1f}x the {d['dataset_tokens_initial'] / 1e6:,.1f}M-token fine-tuning set: "
            f"retrieval looks facts up, fine-tuning does not reliably store that many."),
            c.total_tokens))
    if facts and p.multi_domain:
        out.append(Reason("multi_domain_agent", "facts", 2, (
            "The assistant spans several domains: one retrieval index per source serves them "
            "all, while fine-tuning needs a dataset and a retrain per domain."), None))
    if facts and p.pre_revenue:
        rag1, ft1 = sim.options["rag"].monthly[0], sim.options[best_ft].monthly[0]
        out.append(Reason("pre_revenue", "facts", 2, (
            f"Pre-revenue: RAG costs {_fmt_money(rag1)} in month 1 against {_fmt_money(ft1)} "
            f"for fine-tuning (dataset build + training), and it is cheap to change course."),
            float(rag1)))
    if (facts and p.latency_budget_ms is not None and p.latency_budget_ms <= LATENCY_SENSITIVE_MS
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
                          p.latency_budget_ms))
    high_volume = t.queries_per_month >= HIGH_VOLUME_QUERIES
    if (facts and high_volume and c.change_per_month <= STABLE_CHANGE
            and c.updates_per_month <= 1 and sim.cheapest() == "ft_self_hosted"):
        gpu_month = float(sim.options["ft_self_hosted"].lines["gpu_serving"][0])
        out.append(Reason("high_stable_volume", "facts", -2, (
            f"{t.queries_per_month / 1e6:,.1f}M queries a month on knowledge that changes "
            f"{c.change_per_month:.0%} a month: a fine-tuned open model "
            f"({s.models.self_hosted}) on {d['gpus_serving_first_month']:.0f} x "
            f"{s.serving.gpu} serves them for {_fmt_money(gpu_month)}/month."),
            t.queries_per_month))
    if facts:
        ratio = tot[best_ft] / tot["rag"] if tot["rag"] > 0 else 1.0
        bands = [(0.5, -3), (0.8, -2), (0.95, -1), (1.05, 0), (1.25, 1), (2.0, 2)]
        points = next((pts for limit, pts in bands if ratio <= limit), 3)
        if points:
            out.append(Reason("total_cost", "facts", points, (
                f"Over {s.horizon_months} months {LABELS[best_ft]} costs "
                f"{_fmt_money(tot[best_ft])} and RAG {_fmt_money(tot['rag'])} "
                f"({ratio - 1:+.0%})."), ratio))
    if facts and ev is not None and (stale := ev.arm("ft").stale_rate) is not None \
            and stale >= STALE_RATE_BAD:
        out.append(Reason("fine_tuned_arm_goes_stale", "facts", 2, (
            f"Measured: after a knowledge update the fine-tuned arm answered {stale:.0%} of the "
            f"changed questions with stale facts."), stale))
    elif facts and d["ft_average_stale_share"] >= STALE_SHARE_BAD:
        out.append(Reason("retraining_lags_changes", "facts", 1, (
            f"At the planned retraining cadence, on average "
            f"{d['ft_average_stale_share']:.0%} of the knowledge is newer than the fine-tuned "
            f"model."), d["ft_average_stale_share"]))
    if facts and ev is not None:
        rag_acc, ft_acc = ev.arm("rag").accuracy, ev.arm("ft").accuracy
        if rag_acc is not None and ft_acc is not None:
            gap = ft_acc - rag_acc
            if gap <= -ACCURACY_MARGIN:
                out.append(Reason("measured_accuracy", "facts", 2, (
                    f"Measured accuracy: RAG {rag_acc:.2f} vs fine-tuned {ft_acc:.2f}."),
                    gap))
            elif gap >= ACCURACY_MARGIN and not retrieval_poor:
                out.append(Reason("measured_accuracy", "facts", -2, (
                    f"Measured accuracy: fine-tuned {ft_acc:.2f} vs RAG {rag_acc:.2f}, "
                    f"with retrieval working."), gap))

    behaviour = [n for n in p.needs if n in BEHAVIOUR_NEEDS]
    saved = (t.system_tokens - t.ft_system_tokens) * t.queries_per_month
    saved_usd = saved / 1e6 * a.model.prices["rag_input"].usd
    if set(behaviour) & {"format", "style"}:
        what = " and ".join(n for n in behaviour if n in ("format", "style"))
        out.append(Reason("output_format_or_style", "behaviour", 3, (
            f"The task needs a consistent output {what}: fine-tuning teaches it once instead "
            f"of {t.system_tokens - t.ft_system_tokens} instruction tokens on every call "
            f"({saved / 1e6:,.1f}M tokens, {_fmt_money(saved_usd)} a month at base-model prices); "
            f"for a JSON schema, structured outputs may do it without training."),
            float(t.system_tokens - t.ft_system_tokens)))
    if "persona" in behaviour:
        out.append(Reason("persona_at_scale", "behaviour", 3, (
            f"A persona at {t.queries_per_month:,.0f} queries a month: a fine-tuned model keeps "
            f"the voice consistently without restating it in every prompt; facts still belong "
            f"in retrieval."), t.queries_per_month))
    if behaviour and p.pre_revenue:
        ft1 = sim.options["ft_api"].monthly[0]
        out.append(Reason("pre_revenue_defer_training", "behaviour", -3, (
            f"Pre-revenue: defer fine-tuning's {_fmt_money(ft1)} first month (dataset build + "
            f"training) until there are users; prompt for the {' and '.join(behaviour)} "
            f"meanwhile."), float(ft1)))
    return out


def _combine(reasons: list[Reason], facts_needed: bool) -> tuple[str, dict[str, float]]:
    scores = {"facts": sum(r.points for r in reasons if r.axis == "facts"),
              "behaviour": sum(r.points for r in reasons if r.axis == "behaviour")}
    train_behaviour = scores["behaviour"] > 0
    if not facts_needed:
        return ("fine-tuning" if train_behaviour else "rag"), scores
    # A tie keeps facts in retrieval: cheaper to start and reversible.
    if scores["facts"] >= 0:
        return ("hybrid" if train_behaviour else "rag"), scores
    return "fine-tuning", scores


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


def _flips(a: CostAnalysis, option: str, rec: str, reasons: list[Reason], facts_needed: bool,
           first_step: str | None) -> list[dict[str, Any]]:
    s, sim = a.model.scenario, a.simulation
    q = s.traffic.queries_per_month
    flips: list[dict[str, Any]] = []
    for pair in a.pairs:
        if option not in (pair.a, pair.b):
            continue
        other = pair.b if pair.a == option else pair.a
        if pair.break_even_queries_per_month is not None:
            v = pair.break_even_queries_per_month
            side = "above" if pair.cheaper_above_break_even == other else "below"
            flips.append({"kind": "query_volume", "option": other, "value": round(v, 1), "text": (
                f"{side.capitalize()} {v:,.0f} queries a month (now {q:,.0f}), "
                f"{LABELS[other]} becomes cheaper than {LABELS[option]} over "
                f"{s.horizon_months} months.")})
        if pair.break_even_month is not None:
            winner = pair.cheaper_at_horizon
            loser = pair.b if winner == pair.a else pair.a
            flips.append({"kind": "break_even_month", "option": other,
                          "value": pair.break_even_month, "text": (
                f"{LABELS[winner]} is cheaper in total than {LABELS[loser]} from month "
                f"{pair.break_even_month} on; over a horizon shorter than that, "
                f"{LABELS[loser]} is cheaper.")})
    tot = sim.totals()
    best_ft = min(("ft_api", "ft_self_hosted"), key=tot.get)
    if facts_needed:
        r_star = retrain_break_even(a.model, best_ft, "rag")
        now = sim.derived["ft_retrains_per_month"]
        if r_star is None:
            text = (f"{LABELS[best_ft]} costs more than RAG even with no retraining at all; "
                    f"only the volume above would change that.")
        elif np.isinf(r_star):
            text = (f"{LABELS[best_ft]} stays cheaper than RAG even retraining "
                    f"60 times a month.")
        else:
            days = 30 / r_star
            text = (f"Retraining {r_star:.2f} times a month (knowledge changing every "
                    f"{days:,.0f} days)" if days >= 10 else
                    f"Retraining {r_star:.2f} times a month (knowledge changing every "
                    f"{days:,.1f} days)")
            text += (f" is where retraining eats fine-tuning's savings against RAG; the "
                     f"scenario needs {now:.2f} a month.")
        flips.append({"kind": "change_rate", "option": best_ft,
                      "value": None if r_star is None or np.isinf(r_star) else round(r_star, 3),
                      "text": text})
    for r in reasons:
        alt, _ = _combine([x for x in reasons if x is not r], facts_needed)
        if alt != rec:
            flips.append({"kind": "rule", "option": alt, "value": r.value, "text": (
                f"Without '{r.rule}' the recommendation would be {alt}.")})
    if first_step:
        flips.append({"kind": "retrieval", "option": None, "value": RECALL_POOR, "text": (
            f"Once recall reaches {RECALL_POOR:.2f} (and MRR {MRR_POOR:.2f}), re-run the "
            f"evaluation: a measured accuracy gap can then count.")})
    return flips


def decide(analysis: CostAnalysis, evidence: Evidence | None = None) -> Decision:
    """The recommendation for the analysed scenario; `evidence` may override the rules."""
    s = analysis.model.scenario
    facts_needed = "facts" in s.profile.needs
    first_step = _retrieval_poor(evidence) if facts_needed else None
    reasons = _rules(analysis, evidence, first_step is not None)
    rec, scores = _combine(reasons, facts_needed)
    tot = analysis.simulation.totals()
    if rec == "fine-tuning":
        option = min(("ft_api", "ft_self_hosted"), key=tot.get)
    else:
        option = rec
    serving = "self-hosted" if option == "ft_self_hosted" else "api"
    ranked = sorted(reasons, key=lambda r: (not supports(r, rec), -abs(r.points)))
    return Decision(
        recommendation=rec, serving=serving, option=option, first_step=first_step,
        scores=scores, reasons=ranked,
        flips=_flips(analysis, option, rec, ranked, facts_needed, first_step),
        totals=tot,
        expected=s.expected.model_dump() if s.expected else None,
        evidence_keys=list(evidence.keys_read) if evidence else [],
    )
