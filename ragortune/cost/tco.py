"""Total cost of ownership per month for each way of putting knowledge into a model.

Four options — RAG over an API model, a fine-tuned API model, a fine-tuned open model on
rented GPUs, and hybrid (fine-tuned API model for behaviour + RAG for facts) — each as separate
cost lines over the months of the horizon, computed as numpy arrays so that break-even searches
and sensitivity sweeps can rerun the whole model thousands of times cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragortune.cost import hardware
from ragortune.cost.measured import Evidence
from ragortune.cost.prices import Price, PriceBook
from ragortune.cost.scenario import Scenario
from ragortune.errors import InputError

OPTIONS = ("rag", "prompting", "ft_api", "ft_self_hosted", "hybrid", "hybrid_self_hosted")
LABELS = {
    "rag": "RAG (API)",
    "prompting": "Prompting / structured outputs (API, cached)",
    "ft_api": "Fine-tuned (API)",
    "ft_self_hosted": "Fine-tuned (self-hosted)",
    "hybrid": "Hybrid: FT + RAG (API)",
    "hybrid_self_hosted": "Hybrid: FT + RAG (self-hosted)",
}
SELF_HOSTED = ("ft_self_hosted", "hybrid_self_hosted")
CACHE_MIN_PROMPT = 1024  # providers cache a prompt prefix only from this length (OpenAI's rule)
DECODE_WEIGHT = 4.0  # GPU work of one answer token, in prompt tokens (for hybrid throughput)
LINES = (
    "embedding_initial", "embedding_updates", "query_embedding",
    "vector_storage", "vector_reads", "vector_writes",
    "prompt_tokens", "completion_tokens",
    "training", "hosting", "gpu_serving", "labour",
)


# -- the worked figures, as functions the simulation itself uses ------------------------------
def token_cost(tokens: Any, usd_per_mtok: float) -> Any:
    """Dollars for `tokens` at a per-million-token price (scalars or arrays)."""
    return np.asarray(tokens, dtype=float) / 1e6 * usd_per_mtok


def training_tokens(examples: Any, tokens_per_example: float, epochs: int) -> Any:
    """Tokens billed for one training run: every epoch reads the whole dataset again."""
    return np.asarray(examples, dtype=float) * tokens_per_example * epochs


def context_tokens(top_k: int, chunk_tokens: int) -> int:
    """Extra prompt tokens RAG adds to every query: k retrieved chunks."""
    return top_k * chunk_tokens


def gpu_cost(usd_per_hour: float, hours_per_day: float, days: float, gpus: Any = 1) -> Any:
    """Dollars for renting `gpus` GPUs for `hours_per_day` over `days` days."""
    return np.asarray(gpus, dtype=float) * hours_per_day * days * usd_per_hour


@dataclass(frozen=True)
class Drivers:
    """The scenario's uncertain drivers, moved (1.0 / None = as written) for sweeps and draws.

    Multipliers: `queries` (volume), `change` (change share and update frequency together),
    `prompt` (retrieval arms' prompt tokens), `labour` (every engineer-day), `gpu_throughput`.
    Absolute overrides: `query_growth`, `change_share`, `retrains_per_month`;
    `price_drift` is the yearly change of API token prices (-0.2 = 20 % cheaper a year).
    """

    queries: float = 1.0
    change: float = 1.0
    prompt: float = 1.0
    labour: float = 1.0
    gpu_throughput: float = 1.0
    retrains_per_month: float | None = None
    query_growth: float | None = None
    change_share: float | None = None
    price_drift: float = 0.0


@dataclass(frozen=True)
class QueryTokens:
    prompt: float
    completion: float
    embedding: float
    source: str
    cached: float = 0.0  # of `prompt`: the repeated instructions a provider's cache discounts
    measured: bool = False


@dataclass(frozen=True)
class OptionCost:
    option: str
    lines: dict[str, np.ndarray]

    @property
    def label(self) -> str:
        return LABELS[self.option]

    @property
    def monthly(self) -> np.ndarray:
        if "_monthly" not in self.__dict__:  # lines are fixed once built; sum them once
            object.__setattr__(self, "_monthly", np.sum(list(self.lines.values()), axis=0))
        return self.__dict__["_monthly"]

    @property
    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.monthly)

    @property
    def total(self) -> float:
        return float(self.monthly.sum())


@dataclass(frozen=True)
class Simulation:
    months: np.ndarray
    options: dict[str, OptionCost]
    derived: dict[str, Any] = field(default_factory=dict)

    def totals(self) -> dict[str, float]:
        if "_totals" not in self.__dict__:  # read many times per decision; computed once
            object.__setattr__(self, "_totals", {n: o.total for n, o in self.options.items()})
        return dict(self.__dict__["_totals"])

    def cheapest(self) -> str:
        totals = self.totals()
        return min(totals, key=totals.get)


def resolve_prices(scenario: Scenario, book: PriceBook) -> dict[str, Price]:
    """Every price the simulation needs, looked up once (errors name the missing one)."""
    m, s = scenario.models, scenario.serving
    return {
        "rag_input": book.get(m.rag, "input_mtok", "models.rag"),
        "rag_output": book.get(m.rag, "output_mtok", "models.rag"),
        "embedding": book.get(m.embedding, "input_mtok", "models.embedding"),
        "train": book.get(m.finetune, "train_mtok", "models.finetune"),
        "ft_input": book.get(m.finetune, "ft_input_mtok", "models.finetune"),
        "ft_output": book.get(m.finetune, "ft_output_mtok", "models.finetune"),
        "serving_gpu": book.gpu_hour(s.gpu),
        "train_gpu": book.gpu_hour(s.train_gpu),
    }


def query_tokens(scenario: Scenario, evidence: Evidence | None) -> dict[str, QueryTokens]:
    """Tokens per query per arm: measured (evidence) > given (scenario) > estimated."""
    t = scenario.traffic
    context = context_tokens(t.top_k, t.chunk_tokens)
    if t.rag_prompt_tokens is not None:
        rag_prompt, rag_src = t.rag_prompt_tokens, "scenario traffic.rag_prompt_tokens"
    else:
        rag_prompt = t.system_tokens + t.question_tokens + context
        rag_src = (f"estimate: system {t.system_tokens} + question {t.question_tokens} + "
                   f"{t.top_k} chunks x {t.chunk_tokens}")
    ft_prompt = t.ft_system_tokens + t.question_tokens
    estimates = {
        "rag": QueryTokens(rag_prompt, t.answer_tokens, t.question_tokens, rag_src,
                           t.system_tokens),
        "prompting": QueryTokens(t.system_tokens + t.question_tokens, t.answer_tokens, 0,
                                 f"estimate: system {t.system_tokens} + question "
                                 f"{t.question_tokens}", t.system_tokens),
        "ft": QueryTokens(ft_prompt, t.answer_tokens, 0,
                          f"estimate: system {t.ft_system_tokens} + question {t.question_tokens}",
                          t.ft_system_tokens),
        "hybrid": QueryTokens(ft_prompt + context, t.answer_tokens, t.question_tokens,
                              f"estimate: system {t.ft_system_tokens} + question "
                              f"{t.question_tokens} + {t.top_k} chunks x {t.chunk_tokens}",
                              t.ft_system_tokens),
    }
    out = {}
    for arm, est in estimates.items():
        ev = evidence.arm(arm) if evidence is not None and arm != "prompting" else None
        measured = (ev.prompt_tokens, ev.completion_tokens, ev.embedding_tokens) if ev else ()
        if not measured or all(v is None for v in measured):
            out[arm] = est
        else:
            out[arm] = QueryTokens(
                prompt=ev.prompt_tokens if ev.prompt_tokens is not None else est.prompt,
                completion=ev.completion_tokens if ev.completion_tokens is not None
                else est.completion,
                embedding=ev.embedding_tokens if ev.embedding_tokens is not None
                else est.embedding,
                source=f"evidence {evidence.path} arms.{arm}.tokens_per_query (missing parts "
                       f"estimated)",
                cached=est.cached, measured=ev.prompt_tokens is not None)
        q = out[arm]
        if q.prompt < CACHE_MIN_PROMPT:  # too short for the provider's prompt cache
            out[arm] = QueryTokens(q.prompt, q.completion, q.embedding, q.source, 0.0, q.measured)
    return out


def _runs(months: np.ndarray, per_month: float) -> np.ndarray:
    """Whole runs falling in each month after the first, at `per_month` a month."""
    runs = np.floor(months * per_month + 1e-9) - np.floor((months - 1) * per_month + 1e-9)
    runs[0] = 0.0
    return runs


def stale_share(knowledge_per_month: float, retrains_per_month: float, updates_per_month: float,
                horizon_months: int) -> float:
    """Average share of the knowledge newer than the fine-tuned model.

    Retraining at every update keeps up (RAG has the same lag); slower retraining leaves on
    average half a cycle of new knowledge out; never retraining leaves half the horizon's.
    """
    if knowledge_per_month == 0 or (retrains_per_month > 0
                                    and retrains_per_month >= updates_per_month - 1e-9):
        return 0.0
    if retrains_per_month > 0:
        return min(1.0, knowledge_per_month / retrains_per_month / 2)
    return min(1.0, knowledge_per_month * horizon_months / 2)


def _sizes(scenario: Scenario, book: PriceBook) -> tuple[dict[str, Any], list[str]]:
    """Model size, GPU memory and the training recipe's GPUs; refuses a model that cannot fit."""
    srv, warnings = scenario.serving, []
    params = srv.model_params_b or hardware.params_from_name(scenario.models.self_hosted)
    if params is None:
        params = hardware.DEFAULT_PARAMS_B
        warnings.append(f"serving.model_params_b: the size of '{scenario.models.self_hosted}' "
                        f"is not in its name; assumed {params:g}B parameters (set it)")
    row = book.gpu_row(srv.gpu)
    memory = srv.gpu_memory_gb or (row["memory_gb"] if row else None)
    need = hardware.serving_memory_gb(params, srv.weight_bytes)
    if memory is None:
        warnings.append(f"serving.gpu_memory_gb: memory of GPU '{srv.gpu}' unknown; the model "
                        f"({need:,.0f} GB) was not checked against it (set it)")
    elif need > memory * srv.gpus_per_replica:
        fit = -(-need // memory)
        raise InputError(
            f"serving: {scenario.models.self_hosted} ({params:g}B parameters x "
            f"{srv.weight_bytes:g} bytes + {hardware.MEMORY_HEADROOM - 1:.0%} for the KV cache "
            f"= {need:,.0f} GB) does not fit {srv.gpus_per_replica} x {srv.gpu} "
            f"({memory:g} GB each); set serving.gpus_per_replica = {fit:.0f}, a larger "
            f"serving.gpu, or serving.weight_bytes = 0.5 for a 4-bit model")
    train_row = book.gpu_row(srv.train_gpu)
    train_memory = train_row["memory_gb"] if train_row else 80.0
    tflops = hardware.gpu_tflops(srv.train_gpu)
    if tflops is None and srv.train_gpu_hours is None and srv.train_tokens_per_gpu_hour is None:
        tflops = 312.0
        warnings.append(f"serving.train_gpu: compute of '{srv.train_gpu}' unknown; assumed an "
                        f"A100's 312 TFLOPS (set serving.train_tokens_per_gpu_hour)")
    return {"params_b": params, "serving_memory_gb": need, "gpu_memory_gb": memory,
            "train_gpus": hardware.training_gpus(params, srv.train_method, train_memory),
            "train_tflops": tflops}, warnings


def sanity_warnings(scenario: Scenario) -> list[str]:
    """Inputs far outside anything real: costed anyway, but flagged in the output and JSON."""
    t, c, srv, h = scenario.traffic, scenario.corpus, scenario.serving, scenario.horizon_months
    out = []
    if t.queries_per_month > 1e10:
        out.append(f"traffic.queries_per_month = {t.queries_per_month:.3g} is "
                   f"{t.queries_per_month / 2.6e6:,.0f} queries a second; check the unit "
                   f"(queries a month)")
    final = t.queries_per_month * (1 + t.growth_per_month) ** (h - 1)
    if t.growth_per_month > 0 and final > 1000 * max(t.queries_per_month, 1):
        out.append(f"traffic.growth_per_month = {t.growth_per_month:.0%} compounds to "
                   f"{final / t.queries_per_month:,.0f}x the volume by month {h}; a forecast "
                   f"that steep is better handled as a revisit date")
    if c.total_tokens > 1e11:
        out.append(f"corpus: {c.total_tokens:.3g} tokens is larger than any public web crawl "
                   f"a team indexes; check documents and tokens_per_document")
    if srv.requests_per_gpu_minute > 20_000:
        out.append(f"serving.requests_per_gpu_minute = {srv.requests_per_gpu_minute:,.0f} "
                   f"is beyond any measured single-GPU serving rate")
    if scenario.finetune.tokens_per_example > 128_000:
        out.append("finetune.tokens_per_example exceeds any model's context window")
    return out


class CostModel:
    """A scenario with its prices and token counts resolved, ready to run under any drivers."""

    def __init__(self, scenario: Scenario, book: PriceBook, evidence: Evidence | None = None
                 ) -> None:
        self.scenario = scenario
        self.evidence = evidence
        self.prices = resolve_prices(scenario, book)
        self.tokens = query_tokens(scenario, evidence)
        self.sizes, size_warnings = _sizes(scenario, book)
        self.warnings = size_warnings + sanity_warnings(scenario)
        self._price_dicts = {name: price.to_dict() for name, price in self.prices.items()}

    def knowledge_per_month(self, drivers: Drivers = Drivers()) -> float:
        """Share of the corpus that is new or rewritten each month: growth is change too."""
        c = self.scenario.corpus
        change = drivers.change_share if drivers.change_share is not None else (
            c.change_per_month * drivers.change)
        return min(1.0, change) + c.growth_per_month

    def ft_retrains_per_month(self, drivers: Drivers = Drivers()) -> float:
        """Keep-fresh default: retrain at every knowledge update, unless a cadence is given."""
        c, f = self.scenario.corpus, self.scenario.finetune
        if drivers.retrains_per_month is not None:
            return drivers.retrains_per_month
        if f.retrain_every_months is not None:
            return 1.0 / f.retrain_every_months
        return c.updates_per_month * drivers.change if self.knowledge_per_month(drivers) > 0 \
            else 0.0

    def _gpu_hours_per_run(self, run_tokens: np.ndarray) -> np.ndarray:
        srv, z = self.scenario.serving, self.sizes
        if srv.train_gpu_hours is not None:
            return np.full_like(run_tokens, srv.train_gpu_hours)
        if srv.train_tokens_per_gpu_hour is not None:
            return run_tokens / srv.train_tokens_per_gpu_hour + srv.train_overhead_hours
        return hardware.training_gpu_hours(run_tokens, z["params_b"], srv.train_method,
                                           z["train_tflops"], srv.train_mfu,
                                           srv.train_overhead_hours, z["train_gpus"])

    def run(self, drivers: Drivers = Drivers()) -> Simulation:
        s = self.scenario
        c, t, f, lab, srv, vs = (s.corpus, s.traffic, s.finetune, s.labour, s.serving,
                                 s.vector_store)
        p = {k: v.usd for k, v in self.prices.items()}
        m = np.arange(s.horizon_months, dtype=float)
        first = (m == 0).astype(float)
        later = 1.0 - first
        drift = (1.0 + drivers.price_drift) ** (m / 12.0)

        corpus = c.total_tokens * (1.0 + c.growth_per_month) ** m
        previous = np.concatenate([[corpus[0]], corpus[:-1]])
        added = np.where(m > 0, corpus - previous, 0.0)
        change = min(1.0, drivers.change_share if drivers.change_share is not None
                     else c.change_per_month * drivers.change)
        changed = np.where(m > 0, change * previous, 0.0)
        growth = t.growth_per_month if drivers.query_growth is None else drivers.query_growth
        queries = t.queries_per_month * drivers.queries * (1.0 + growth) ** m
        rate = lab.rate_per_day * drivers.labour

        r_ft = self.ft_retrains_per_month(drivers)
        r_hy = 1.0 / f.hybrid_retrain_every_months if f.hybrid_retrain_every_months else 0.0
        deprecations = (_runs(m, 1.0 / f.base_model_life_months) if f.base_model_life_months
                        else np.zeros_like(m))
        ft_retrains, hy_retrains = _runs(m, r_ft), _runs(m, r_hy)
        # A deprecated base model forces a retrain of an API fine-tune (open weights stay).
        ft_api_runs = np.where(ft_retrains > 0, ft_retrains, deprecations)
        hy_api_runs = np.where(hy_retrains > 0, hy_retrains, deprecations)
        scale = corpus / corpus[0] if f.grows_with_corpus else np.ones_like(corpus)
        run_tokens = training_tokens(f.examples * scale, f.tokens_per_example, f.epochs)
        api_run = token_cost(run_tokens, p["train"]) * drift
        gpu_hours_run = self._gpu_hours_per_run(run_tokens)
        gpu_run = gpu_hours_run * p["train_gpu"]

        chunks = corpus / t.chunk_tokens
        written = np.where(m == 0, chunks, (added + changed) / t.chunk_tokens)
        vector = {
            "embedding_initial": first * token_cost(corpus[0], p["embedding"]),
            "embedding_updates": token_cost(added + changed, p["embedding"]) * drift,
            "vector_storage": vs.monthly + chunks * (vs.dimensions * 4 + vs.bytes_per_chunk)
            / 1e9 * vs.per_gb_month,
            "vector_reads": queries * vs.reads_per_query / 1e6 * vs.per_million_reads,
            "vector_writes": written / 1e6 * vs.per_million_writes,
        }
        tok = self.tokens
        minutes = srv.hours_per_day * srv.days_per_month * 60.0
        peak_rpm = queries * srv.peak_to_average / minutes

        def fleet(rpm_per_replica: float) -> np.ndarray:
            replicas = np.ceil(peak_rpm / (rpm_per_replica * drivers.gpu_throughput) - 1e-9)
            return np.maximum(max(srv.min_gpus, srv.gpus_per_replica),
                              replicas * srv.gpus_per_replica)

        def work(q: QueryTokens, prompt_factor: float = 1.0) -> float:
            return q.prompt * prompt_factor + DECODE_WEIGHT * q.completion

        gpus = fleet(srv.requests_per_gpu_minute)
        gpus_hy = fleet(srv.requests_per_gpu_minute * work(tok["ft"])
                        / work(tok["hybrid"], drivers.prompt))

        def usage(arm: str, price_in: float, price_out: float, retrieval: bool = False
                  ) -> dict[str, np.ndarray]:
            q = tok[arm]
            factor = drivers.prompt if retrieval else 1.0
            prompt = q.prompt * factor - q.cached + q.cached * (1 - t.cached_input_discount)
            return {"prompt_tokens": token_cost(queries * prompt, price_in) * drift,
                    "completion_tokens": token_cost(queries * q.completion, price_out) * drift}

        def query_embedding(arm: str) -> np.ndarray:
            return token_cost(queries * tok[arm].embedding, p["embedding"]) * drift

        def days(build: float, monthly: float, per_run: np.ndarray | float = 0.0,
                 migrations: bool = True) -> np.ndarray:
            upkeep = lab.eval_days_per_month + monthly
            return rate * (first * build + later * upkeep + per_run
                           + (deprecations * lab.migration_days if migrations else 0.0))

        ds, refresh = lab.dataset_build_days, lab.dataset_refresh_days
        hosting = np.full_like(m, f.hosting_per_month)
        serve = gpu_cost(p["serving_gpu"], srv.hours_per_day, srv.days_per_month, gpus)
        serve_hy = gpu_cost(p["serving_gpu"], srv.hours_per_day, srv.days_per_month, gpus_hy)
        lines = {
            "rag": {**vector, **usage("rag", p["rag_input"], p["rag_output"], True),
                    "query_embedding": query_embedding("rag"),
                    "labour": days(lab.rag_build_days, lab.rag_upkeep_days_per_month)},
            "prompting": {**usage("prompting", p["rag_input"], p["rag_output"]),
                          "labour": days(lab.prompt_build_days, 0.0)},
            "ft_api": {**usage("ft", p["ft_input"], p["ft_output"]),
                       "training": (first + ft_api_runs) * api_run, "hosting": hosting,
                       "labour": days(ds, 0.0, ft_api_runs * refresh)},
            "ft_self_hosted": {
                "training": (first + ft_retrains) * gpu_run, "gpu_serving": serve,
                "labour": days(ds + lab.self_host_setup_days, lab.self_host_upkeep_days_per_month,
                               ft_retrains * refresh, migrations=False)},
            "hybrid": {**vector, **usage("hybrid", p["ft_input"], p["ft_output"], True),
                       "query_embedding": query_embedding("hybrid"),
                       "training": (first + hy_api_runs) * api_run, "hosting": hosting,
                       "labour": days(lab.rag_build_days + ds, lab.rag_upkeep_days_per_month,
                                      hy_api_runs * refresh)},
            "hybrid_self_hosted": {
                **vector, "query_embedding": query_embedding("hybrid"),
                "training": (first + hy_retrains) * gpu_run, "gpu_serving": serve_hy,
                "labour": days(lab.rag_build_days + ds + lab.self_host_setup_days,
                               lab.rag_upkeep_days_per_month
                               + lab.self_host_upkeep_days_per_month,
                               hy_retrains * refresh, migrations=False)},
        }
        zero = np.zeros_like(m)
        options = {name: OptionCost(name, {line: np.asarray(lines[name].get(line, zero),
                                                            dtype=float) + zero
                                           for line in LINES})
                   for name in OPTIONS}
        derived = self._derived(drivers, corpus, queries, run_tokens, api_run, gpu_hours_run,
                                gpus, gpus_hy, r_ft, r_hy, growth)
        return Simulation(months=m + 1, options=options, derived=derived)

    def _derived(self, drivers: Drivers, corpus: np.ndarray, queries: np.ndarray,
                 run_tokens: np.ndarray, api_run: np.ndarray, gpu_hours_run: np.ndarray,
                 gpus: np.ndarray, gpus_hy: np.ndarray, r_ft: float, r_hy: float,
                 query_growth: float) -> dict[str, Any]:
        """The intermediate numbers a reader needs to check the totals by hand."""
        s = self.scenario
        t, f, srv = s.traffic, s.finetune, s.serving
        updates = s.corpus.updates_per_month * drivers.change
        knowledge = self.knowledge_per_month(drivers)
        dataset_tokens = f.examples * f.tokens_per_example
        return {
            "queries_first_month": float(queries[0]),
            "queries_last_month": float(queries[-1]),
            "query_growth_per_month": query_growth,
            "corpus_tokens_initial": float(corpus[0]),
            "corpus_tokens_final": float(corpus[-1]),
            "chunks_initial": float(corpus[0] / t.chunk_tokens),
            "context_tokens_per_query": context_tokens(t.top_k, t.chunk_tokens),
            "tokens_per_query": {arm: dict(vars(q)) for arm, q in self.tokens.items()},
            "dataset_tokens_initial": dataset_tokens,
            "epochs": f.epochs,
            "training_tokens_per_run_initial": float(run_tokens[0]),
            "training_cost_per_epoch_initial": float(token_cost(dataset_tokens,
                                                                self.prices["train"].usd)),
            "training_cost_per_run_initial": float(api_run[0]),
            "self_hosted_training_gpu_hours_per_run_initial": float(gpu_hours_run[0]),
            "self_hosted_training_cost_per_run_initial": float(
                gpu_hours_run[0] * self.prices["train_gpu"].usd),
            "self_hosted_model": {**self.sizes, "train_method": srv.train_method,
                                  "train_mfu": srv.train_mfu,
                                  "tflops_source": hardware.TFLOPS_SOURCE},
            "knowledge_per_month": knowledge,
            "ft_retrains_per_month": r_ft,
            "ft_retrain_cadence_fixed": drivers.retrains_per_month is None
            and f.retrain_every_months is not None,
            "hybrid_retrains_per_month": r_hy,
            "base_model_life_months": f.base_model_life_months,
            "ft_average_stale_share": stale_share(knowledge, r_ft, updates, s.horizon_months),
            "updates_per_month": updates,
            "peak_to_average": srv.peak_to_average,
            "gpus_serving_first_month": float(gpus[0]),
            "gpus_serving_last_month": float(gpus[-1]),
            "hybrid_gpus_serving_first_month": float(gpus_hy[0]),
            "gpu_hours_per_month_first": float(gpus[0] * srv.hours_per_day * srv.days_per_month),
            "price_drift_per_year": drivers.price_drift,
            "prices": self._price_dicts,
        }
