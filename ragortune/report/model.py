"""The one adapter between a `compare --out` folder and the report: files in, `ReportModel` out.

Every schema the report reads is interpreted here and nowhere else, so a change in
`evidence.json`, `decision.json` or `cost.json` is a one-place edit. Each input is optional:
what is absent becomes None (shown as "not measured"), never an exception. Read:

  evidence.json   arms.<arm>.<figure>: a bare number (schema v1) or an object
                  {value, n, low, high, split, run_id} (schema v2); retrieval.<metric> the same;
                  versions, dataset, runs.<command>.settings
  decision.json   `decide --json`: recommendation, option, confidence (text, number, or
                  {win_share|p, text}), reasons[{rank, text, value, supports, dollars}],
                  flips[{text}], win_share|monte_carlo.win_share {option: share},
                  sensitivity[{driver, change|factor, flips|recommendation, text}], warnings
  cost.json       `cost --json`: scenario, options.<o>.{label, total, cumulative} with bands as
                  options.<o>.bands {p10, p50, p90} (lists per month) or cumulative_p10/_p90,
                  break_even[], sensitivity[] (cheapest per driver and factor),
                  assumptions.queries_per_month (number or list per month) when present
  answers.csv     per question and arm: query_id, question, answer, correct, abstained,
                  cited_docs or cited_chunk, and gold/answers when recorded
  questions.jsonl the questions asked (_id, text, answers): the gold answers when answers.csv
                  does not carry them
  run.json        scenario, settings, models, data hashes, package versions, stages
                  {name: ran|cached|skipped}, questions_synthesised, training.protocol,
                  by_exposure.{unseen_phrasing,unseen_fact}.comparisons (paired tests per kind)
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragortune.errors import InputError

ARMS = ("base", "rag", "ft", "hybrid")
# Which cost-model option serves each evaluated arm (the base model is not an option).
ARM_OPTION = {"rag": "rag", "ft": "ft_api", "hybrid": "hybrid"}
OPTION_NAMES = {"rag": "RAG", "ft_api": "Fine-tuned (API)",
                "ft_self_hosted": "Fine-tuned (self-hosted)", "hybrid": "Hybrid (FT + RAG)",
                "hybrid_self_hosted": "Hybrid (self-hosted)", "fine-tuning": "Fine-tuning",
                "prompting": "Prompting / structured outputs"}
INPUT_FILES = ("evidence.json", "decision.json", "cost.json", "answers.csv", "run.json")


@dataclass(frozen=True)
class Measure:
    """One measured figure with its provenance: sample size, 95% interval, split, run."""

    value: float | None
    n: int | None = None
    low: float | None = None
    high: float | None = None
    split: str | None = None
    run_id: str | None = None
    interval_source: str | None = None  # "evidence", or "wilson (computed by the report)"


@dataclass(frozen=True)
class ArmRow:
    name: str
    accuracy: Measure
    accuracy_seen: Measure
    abstention_precision: Measure
    abstention_recall: Measure
    answered_rate: Measure
    stale_rate: Measure
    new_fact_accuracy: Measure
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    prompt_tokens: float | None
    completion_tokens: float | None
    embedding_tokens: float | None
    questions: int | None
    model: str | None
    cost_per_correct: float | None  # USD at the scenario's prices and volume
    # knowledge injection: unseen phrasings of trained facts, and facts never trained on (for
    # arms that trained on nothing: the same questions, as the fine-tuned arm sorted them)
    accuracy_unseen_phrasing: Measure = Measure(None)
    accuracy_unseen_fact: Measure = Measure(None)


@dataclass(frozen=True)
class Reason:
    rank: int
    text: str
    rule: str | None
    value: float | None
    supports: bool
    dollars: float | None
    decisive: bool = False
    tie: bool = False  # stated and weighed at nothing (e.g. a gap within the noise)

    @property
    def side(self) -> str:
        return "tie" if self.tie else ("for" if self.supports else "against")


@dataclass(frozen=True)
class Verdict:
    recommendation: str
    option: str | None
    label: str
    confidence: str | None
    win_share: dict[str, float]
    reasons: list[Reason]
    flips: list[str]
    warnings: list[str]
    first_step: str | None
    scenario: str | None
    too_close: bool = False
    runner_up: str | None = None
    premium: float | None = None  # over the runner-up; negative = a saving
    revisit: str | None = None
    settled_by: str | None = None


@dataclass(frozen=True)
class Curve:
    option: str
    label: str
    total: float
    cumulative: list[float]
    p10: list[float] | None
    p90: list[float] | None
    p50_total: float | None = None


@dataclass(frozen=True)
class BreakEven:
    a: str
    b: str
    month: int | None
    cheaper: str
    difference: float | None
    volume: float | None


@dataclass(frozen=True)
class CostView:
    scenario: str
    horizon_months: int
    cheapest: str | None
    curves: list[Curve]
    break_even: list[BreakEven]


@dataclass(frozen=True)
class SensitivityRow:
    driver: str
    change: str
    outcome: str
    flips: bool | None


@dataclass(frozen=True)
class Disagreement:
    query_id: str
    question: str
    gold: str | None
    answers: dict[str, str]  # arm -> answer text
    correct: dict[str, bool | None]
    cited: dict[str, str]


@dataclass(frozen=True)
class PairedTest:
    """One pair of arms compared on the same questions (evidence `comparisons`)."""

    subset: str  # "all counted", "unseen phrasings", "unseen facts"
    a: str
    b: str
    n: int | None
    diff: float | None
    low: float | None
    high: float | None
    p_holm: float | None
    significant: bool
    verdict: str


@dataclass(frozen=True)
class ReportModel:
    folder: str
    present: dict[str, bool]
    verdict: Verdict | None
    arms: list[ArmRow]
    retrieval: dict[str, Measure]
    cost: CostView | None
    sensitivity: list[SensitivityRow] | None  # the decision's (None: it gave none)
    cost_sensitivity: list[SensitivityRow]  # the cost model's cheapest option per driver
    disagreements: list[Disagreement]
    questions_asked: int
    synthesised: bool | None
    run: dict[str, dict[str, str]] = field(default_factory=dict)  # section -> key -> value
    training_protocol: str | None = None  # what the adapter trained on, in one sentence
    paired_tests: list[PairedTest] = field(default_factory=list)


def load_report(folder: Path | str) -> ReportModel:
    """Read whatever the folder holds; a folder with none of the inputs is an InputError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found; give the --out folder of `ragortune "
                         "compare` (or of `eval answers`)")
    present = {name: (folder / name).is_file() for name in INPUT_FILES}
    if not any(present.values()):
        raise InputError(f"{folder}: none of {', '.join(INPUT_FILES)} is there; give the "
                         "--out folder of `ragortune compare`")
    evidence = _read_json(folder / "evidence.json")
    decision = _read_json(folder / "decision.json")
    cost = _read_json(folder / "cost.json")
    run = _read_json(folder / "run.json")
    rows = _read_csv(folder / "answers.csv")
    gold = _read_gold(folder / "questions.jsonl")
    total_queries = _queries_total(cost, run)
    arms = _arms(evidence, cost, total_queries)
    return ReportModel(
        folder=str(folder), present=present, verdict=_verdict(decision), arms=arms,
        retrieval={k: _measure(v) for k, v in (evidence.get("retrieval") or {}).items()
                   if _measure(v).value is not None},
        cost=_cost(cost, decision), sensitivity=_decision_sensitivity(decision),
        cost_sensitivity=_cost_sensitivity(cost),
        disagreements=_disagreements(rows, gold),
        questions_asked=len({r.get("query_id") or r.get("question") for r in rows}),
        synthesised=run.get("questions_synthesised",
                            (run.get("questions") or {}).get("synthesised")
                            if isinstance(run.get("questions"), dict) else None),
        run=_run_facts(run, evidence, cost),
        training_protocol=(run.get("training") or {}).get("protocol")
        if isinstance(run.get("training"), dict) else None,
        paired_tests=_paired_tests(evidence, run))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); rerun the stage that wrote it") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object at the top level")
    return data


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _read_gold(path: Path) -> dict[str, list[str]]:
    from ragortune.io import read_jsonl

    if not path.is_file():
        return {}
    return {str(row.get("_id")): list(row.get("answers") or [])
            for _, row in read_jsonl(path, "questions file") if isinstance(row, dict)}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def wilson(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: sane at 0, 1 and small n."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _measure(raw: Any, n: Any = None, proportion: bool = False) -> Measure:
    """A bare number (schema v1) or {value, n, low, high, split, run_id} (schema v2). A bare
    proportion with a known n gets a Wilson interval, marked as computed here."""
    if isinstance(raw, dict):
        interval = raw.get("ci95") or raw.get("interval")
        low, high = (interval if isinstance(interval, (list, tuple)) and len(interval) == 2
                     else (raw.get("low"), raw.get("high")))
        count = raw.get("n", n)
        m = Measure(_num(raw.get("value", raw.get("mean"))), int(count) if _num(count) else None,
                    _num(low), _num(high), raw.get("split"), raw.get("run_id"),
                    "evidence" if _num(low) is not None else None)
    else:
        m = Measure(_num(raw), int(n) if _num(n) else None)
    if proportion and m.low is None and m.value is not None and m.n:
        low, high = wilson(min(max(m.value, 0.0), 1.0), m.n)
        m = Measure(m.value, m.n, low, high, m.split, m.run_id, "wilson (computed by the report)")
    return m


def _arms(evidence: dict[str, Any], cost: dict[str, Any], queries: float | None) -> list[ArmRow]:
    arms = evidence.get("arms") or {}
    order = [a for a in ARMS if a in arms] + [a for a in arms if a not in ARMS]
    options = cost.get("options") or {}
    out = []
    for name in order:
        a = arms[name] if isinstance(arms[name], dict) else {}
        answerable = _num(a.get("answerable"))
        unanswerable = _num(a.get("unanswerable"))
        # arms that trained on nothing have no `accuracy_unseen` (null): every question counts
        acc_raw = a.get("accuracy_unseen") or a.get("accuracy")
        accuracy = _measure(acc_raw, answerable, proportion=True)
        abst = a.get("abstention") or {}
        lat = a.get("latency_ms") or {}
        tok = a.get("tokens_per_query") or {}
        update = a.get("update") or {}
        stale = a.get("stale_rate", update.get("stale_rate"))
        model = a.get("model")
        if isinstance(model, dict):
            model = " + ".join(str(v) for v in (model.get("llm"), model.get("adapter")) if v)
        per_correct = None
        option = options.get(ARM_OPTION.get(name, ""), {})
        if queries and accuracy.value and _num(option.get("total")):
            per_correct = float(option["total"]) / (queries * accuracy.value)
        out.append(ArmRow(
            name=name, accuracy=accuracy,
            accuracy_seen=_measure(a.get("accuracy_seen"), None, proportion=True),
            abstention_precision=_measure(abst.get("precision")),
            abstention_recall=_measure(abst.get("recall"), unanswerable, proportion=True),
            answered_rate=_measure(a.get("answered_rate"), answerable, proportion=True),
            stale_rate=_measure(stale), new_fact_accuracy=_measure(a.get("new_fact_accuracy")),
            latency_p50_ms=_num(_value(lat.get("p50"))), latency_p95_ms=_num(_value(lat.get("p95"))),
            prompt_tokens=_num(_value(tok.get("prompt"))),
            completion_tokens=_num(_value(tok.get("completion"))),
            embedding_tokens=_num(_value(tok.get("embedding"))),
            questions=int(a["questions"]) if _num(a.get("questions")) else None,
            model=str(model) if model else None, cost_per_correct=per_correct,
            accuracy_unseen_phrasing=_measure(a.get("accuracy_unseen_phrasing")),
            accuracy_unseen_fact=_measure(a.get("accuracy_unseen_fact"))))
    return out


SUBSETS = {"unseen_phrasing": "unseen phrasings", "unseen_fact": "unseen facts"}


def _paired_tests(evidence: dict[str, Any], run: dict[str, Any]) -> list[PairedTest]:
    """The run's pairwise tests: on every question that counts for both arms (evidence
    `comparisons`, compare's run first), then on each kind of unseen question apart (run.json
    `by_exposure`, written by compare when a fine-tuned arm ran)."""
    runs = evidence.get("comparisons") or {}
    name = "compare" if "compare" in runs else next(iter(runs), None)
    groups = [("all counted", runs.get(name) or [])] if name else []
    exposure = run.get("by_exposure") if isinstance(run.get("by_exposure"), dict) else {}
    groups += [(label, (exposure.get(key) or {}).get("comparisons") or [])
               for key, label in SUBSETS.items()]
    out = []
    for subset, tests in groups:
        for t in tests:
            if isinstance(t, dict):
                out.append(PairedTest(subset, str(t.get("a")), str(t.get("b")),
                                      int(t["n"]) if _num(t.get("n")) else None,
                                      _num(t.get("diff")), _num(t.get("low")),
                                      _num(t.get("high")), _num(t.get("p_holm")),
                                      bool(t.get("significant")), str(t.get("verdict") or "")))
    return out


def _value(raw: Any) -> Any:
    return raw.get("value") if isinstance(raw, dict) else raw


def _queries_total(cost: dict[str, Any], run: dict[str, Any]) -> float | None:
    """Queries over the cost horizon: from cost.json when it says, else the scenario file's
    traffic (volume and monthly growth, as the cost model compounds them)."""
    assumptions = cost.get("assumptions") or {}
    per_month = assumptions.get("queries_per_month")
    if isinstance(per_month, list) and per_month:
        return float(sum(_num(v) or 0 for v in per_month)) or None
    horizon = int((cost.get("scenario") or {}).get("horizon_months") or 0)
    if _num(per_month) and horizon:
        return float(per_month) * horizon
    first, growth = _num(assumptions.get("queries_first_month")), _num(
        assumptions.get("query_growth_per_month"))
    if first is not None and growth is not None and horizon:
        return sum(first * (1 + growth) ** m for m in range(horizon)) or None
    scenario = (run.get("scenario") or {}) if isinstance(run.get("scenario"), dict) else {}
    path = scenario.get("path") or (cost.get("scenario") or {}).get("path")
    if not path or not horizon or not Path(path).is_file():
        return None
    try:
        traffic = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("traffic", {})
    except (tomllib.TOMLDecodeError, OSError):
        return None
    volume, growth = _num(traffic.get("queries_per_month")), _num(
        traffic.get("growth_per_month", 0.0))
    if not volume or growth is None:
        return None
    return sum(volume * (1 + growth) ** m for m in range(horizon))


def _verdict(decision: dict[str, Any]) -> Verdict | None:
    if not decision.get("recommendation"):
        return None
    rec = str(decision["recommendation"])
    option = decision.get("option")
    serving = decision.get("serving")
    label = OPTION_NAMES.get(rec, rec)
    if rec == "fine-tuning" and serving:
        label += f", served {serving}"
    monte = decision.get("monte_carlo") or {}
    shares = decision.get("win_share") or decision.get("win_shares") or monte.get("win_share") \
        or {k: o.get("win_share") for k, o in (monte.get("options") or {}).items()
            if isinstance(o, dict) and _num(o.get("win_share"))}
    conf = decision.get("confidence", monte.get("confidence"))
    draws = monte.get("draws")
    if isinstance(conf, dict):
        conf = conf.get("text") or (f"wins {float(conf['win_share']):.0%} of the draws"
                                    if _num(conf.get("win_share")) is not None else None)
    elif _num(conf) is not None:
        conf = f"wins {float(conf):.0%} of {draws:,} draws" if _num(draws) else f"{float(conf):.0%}"
    if conf is None and option in shares and _num(shares[option]) is not None:
        conf = f"wins {float(shares[option]):.0%} of {draws:,} draws" if draws else \
            f"wins {float(shares[option]):.0%} of the draws"
    too_close = bool(decision.get("too_close_to_call", monte.get("too_close_to_call")))
    settled = monte.get("settled_by")
    reasons = [Reason(int(r.get("rank", i + 1)), str(r.get("text", "")), r.get("rule"),
                      _num(r.get("value")),
                      bool(r.get("supports", True)),
                      _num(r.get("dollars", r.get("usd"))), bool(r.get("decisive")),
                      r.get("favors") == "neither")
               for i, r in enumerate(decision.get("reasons") or []) if isinstance(r, dict)]
    flips = [str(f.get("text", f)) if isinstance(f, dict) else str(f)
             for f in decision.get("flips") or []]
    warnings = [str(w.get("text", w)) if isinstance(w, dict) else str(w)
                for w in decision.get("warnings") or []]
    scenario = decision.get("scenario")
    return Verdict(rec, option, label, conf, {k: float(v) for k, v in shares.items()
                                             if _num(v) is not None},
                   sorted(reasons, key=lambda r: r.rank), flips, warnings,
                   decision.get("first_step"),
                   scenario.get("name") if isinstance(scenario, dict) else scenario,
                   too_close, decision.get("runner_up"),
                   _num(decision.get("premium_over_runner_up")), decision.get("revisit"),
                   settled.get("text") if isinstance(settled, dict) else None)


def _band(opt: dict[str, Any], key: str, extra: Any = None) -> list[float] | None:
    bands = extra or opt.get("bands") or opt.get("cumulative_bands") or {}
    values = bands.get(key) if isinstance(bands, dict) else None
    values = values if values is not None else opt.get(f"cumulative_{key}")
    if isinstance(values, list) and values and all(_num(v) is not None for v in values):
        return [float(v) for v in values]
    return None


def _cost(cost: dict[str, Any], decision: dict[str, Any]) -> CostView | None:
    """Curves from cost.json; P10-P90 bands from it or from the decision's Monte Carlo."""
    options = cost.get("options") or {}
    monte = decision.get("monte_carlo") or {}
    bands = monte.get("bands") or {}
    finals = monte.get("options") or {}
    curves = []
    for name, opt in options.items():
        cum = opt.get("cumulative") if isinstance(opt, dict) else None
        if not isinstance(cum, list) or not cum:
            continue
        curves.append(Curve(name, str(opt.get("label") or OPTION_NAMES.get(name, name)),
                            float(opt.get("total") or cum[-1]), [float(v) for v in cum],
                            _band(opt, "p10", bands.get(name)), _band(opt, "p90", bands.get(name)),
                            _num((finals.get(name) or {}).get("p50"))))
    if not curves:
        return None
    scenario = cost.get("scenario") or {}
    pairs = [BreakEven(str(p.get("a")), str(p.get("b")), p.get("break_even_month"),
                       str(p.get("cheaper_at_horizon")), _num(p.get("difference_at_horizon")),
                       _num(p.get("break_even_queries_per_month")))
             for p in cost.get("break_even") or [] if isinstance(p, dict)]
    return CostView(str(scenario.get("name") or ""),
                    int(scenario.get("horizon_months") or len(curves[0].cumulative)),
                    cost.get("cheapest"), curves, pairs)


def _decision_sensitivity(decision: dict[str, Any]) -> list[SensitivityRow] | None:
    """Which driver, moved how far (down or up), changes the recommendation; an empty list
    means no single driver does within the swept range. None: the decision has no such key."""
    rows = decision.get("sensitivity")
    if not isinstance(rows, list):
        return None
    out = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        if "factor" in r or "change" in r:  # one flat row per move
            change = r.get("change") or (f"x{r['factor']:g}" if _num(r.get("factor")) else "")
            flips = r.get("flips")
            out.append(SensitivityRow(str(r.get("driver", "")), str(change),
                                      str(r.get("text") or r.get("recommendation") or ""),
                                      bool(flips) if flips is not None else None))
            continue
        for side in ("down", "up"):
            move = r.get(side)
            if isinstance(move, dict):
                out.append(SensitivityRow(str(r.get("driver", "")),
                                          f"{side} to {move.get('value')} (now {r.get('now')})",
                                          str(move.get("text") or move.get("option") or ""),
                                          True))
    return out


def _cost_sensitivity(cost: dict[str, Any]) -> list[SensitivityRow]:
    """The cost model's grid: the cheapest option with one driver scaled."""
    out = []
    for r in cost.get("sensitivity") or []:
        if isinstance(r, dict) and _num(r.get("factor")) is not None:
            cheapest = str(r.get("cheapest"))
            out.append(SensitivityRow(str(r.get("driver")), f"x{float(r['factor']):g}",
                                      OPTION_NAMES.get(cheapest, cheapest),
                                      cheapest != cost.get("cheapest")))
    return out


def _truthy(cell: str | None) -> bool | None:
    if cell is None or cell == "":
        return None
    return cell.strip().lower() in ("true", "1", "yes")


def _disagreements(rows: list[dict[str, str]], gold: dict[str, list[str]]
                   ) -> list[Disagreement]:
    """Questions where the arms' verdicts differ (one right, another wrong or abstaining)."""
    by_query: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_query.setdefault(row.get("query_id") or row.get("question", ""), []).append(row)
    out = []
    for qid, group in by_query.items():
        outcomes = {(_truthy(r.get("correct")), _truthy(r.get("abstained"))) for r in group}
        if len(group) < 2 or len(outcomes) < 2:
            continue
        first = group[0]
        recorded = first.get("gold") or first.get("answers") or first.get("gold_answers")
        answers = gold.get(qid)
        gold_text = recorded or (" | ".join(answers) if answers else
                                 ("(unanswerable)" if answers == [] else None))
        out.append(Disagreement(
            qid, first.get("question", ""), gold_text,
            {r.get("arm", "?"): r.get("answer", "") for r in group},
            {r.get("arm", "?"): _truthy(r.get("correct")) for r in group},
            {r.get("arm", "?"): r.get("cited_chunk") or r.get("cited_docs") or "" for r in group}))
    return out


def _flat(data: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}." if isinstance(value, dict) else
                             f"{prefix}{key}"))
        return out
    return {prefix.rstrip("."): ", ".join(map(str, data)) if isinstance(data, list)
            else str(data)}


def _run_facts(run: dict[str, Any], evidence: dict[str, Any], cost: dict[str, Any]
               ) -> dict[str, dict[str, str]]:
    """Provenance tables: run.json's sections when compare wrote one; else what the
    evidence and cost files record (settings of each run, data hashes, versions)."""
    sections: dict[str, dict[str, str]] = {}
    for key, title in (("scenario", "scenario"), ("settings", "settings"),
                       ("config", "settings"), ("models", "models"), ("questions", "questions"),
                       ("data", "data"), ("stages", "stages"), ("versions", "versions")):
        if run.get(key) and title not in sections:
            sections[title] = _flat(run[key])
    if "scenario" not in sections and cost.get("scenario"):
        sections["scenario"] = _flat(cost["scenario"])
    if "settings" not in sections:
        settings = {f"{name}.{k}": v for name, r in (evidence.get("runs") or {}).items()
                    if isinstance(r, dict) for k, v in (r.get("settings") or {}).items()}
        update = (evidence.get("update") or {}).get("settings") or {}
        settings.update({f"update.{k}": v for k, v in update.items()})
        if settings:
            sections["settings"] = _flat(settings)
    if "data" not in sections and evidence.get("dataset"):
        ds = evidence["dataset"]
        sections["data"] = _flat({k: ds[k] for k in ("name", "split", "files", "documents",
                                                        "queries", "judged_queries") if k in ds})
    if "versions" not in sections and evidence.get("versions"):
        sections["versions"] = _flat(evidence["versions"])
    return sections
