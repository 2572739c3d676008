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

from ragortune.cost.prices import Price, PriceBook
from ragortune.cost.scenario import Scenario
from ragortune.evaluate.evidence import Evidence

OPTIONS = ("rag", "ft_api", "ft_self_hosted", "hybrid")
LABELS = {
    "rag": "RAG (API)",
    "ft_api": "Fine-tuned (API)",
    "ft_self_hosted": "Fine-tuned (self-hosted)",
    "hybrid": "Hybrid: FT + RAG (API)",
}
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
    """Multipliers on the scenario's main drivers (1.0 = as written), for sweeps and searches."""

    queries: float = 1.0
    change: float = 1.0
    prompt: float = 1.0
    labour: float = 1.0
    retrains_per_month: float | None = None


@dataclass(frozen=True)
class QueryTokens:
    prompt: float
    completion: float
    embedding: float
    source: str


@dataclass(frozen=True)
class OptionCost:
    option: str
    lines: dict[str, np.ndarray]

    @property
    def label(self) -> str:
        return LABELS[self.option]

    @property
    def monthly(self) -> np.ndarray:
        return np.sum(list(self.lines.values()), axis=0)

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
        return {name: opt.total for name, opt in self.options.items()}

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
        "rag": QueryTokens(rag_prompt, t.answer_tokens, t.question_tokens, rag_src),
        "ft": QueryTokens(ft_prompt, t.answer_tokens, 0,
                          f"estimate: system {t.ft_system_tokens} + question {t.question_tokens}"),
        "hybrid": QueryTokens(ft_prompt + context, t.answer_tokens, t.question_tokens,
                              f"estimate: system {t.ft_system_tokens} + question "
                              f"{t.question_tokens} + {t.top_k} chunks x {t.chunk_tokens}"),
    }
    if evidence is None:
        return estimates
    out = {}
    for arm, est in estimates.items():
        ev = evidence.arm(arm)
        measured = (ev.prompt_tokens, ev.completion_tokens, ev.embedding_tokens)
        if all(v is None for v in measured):
            out[arm] = est
            continue
        out[arm] = QueryTokens(
            prompt=ev.prompt_tokens if ev.prompt_tokens is not None else est.prompt,
            completion=ev.completion_tokens if ev.completion_tokens is not None
            else est.completion,
            embedding=ev.embedding_tokens if ev.embedding_tokens is not None else est.embedding,
            source=f"evidence {evidence.path} arms.{arm}.tokens_per_query (missing parts "
                   f"estimated)",
        )
    return out


def _runs(months: np.ndarray, per_month: float) -> np.ndarray:
    """Whole retraining runs falling in each month after the first, at `per_month` a month."""
    runs = np.floor(months * per_month + 1e-9) - np.floor((months - 1) * per_month + 1e-9)
    runs[0] = 0.0
    return runs


class CostModel:
    """A scenario with its prices and token counts resolved, ready to run under any drivers."""

    def __init__(self, scenario: Scenario, book: PriceBook, evidence: Evidence | None = None
                 ) -> None:
        self.scenario = scenario
        self.evidence = evidence
        self.prices = resolve_prices(scenario, book)
        self.tokens = query_tokens(scenario, evidence)

    def ft_retrains_per_month(self, drivers: Drivers = Drivers()) -> float:
        """Keep-fresh default: retrain at every knowledge update, unless a cadence is given."""
        c, f = self.scenario.corpus, self.scenario.finetune
        if drivers.retrains_per_month is not None:
            return drivers.retrains_per_month
        if f.retrain_every_months is not None:
            return 1.0 / f.retrain_every_months
        return c.updates_per_month * drivers.change if c.change_per_month > 0 else 0.0

    def run(self, drivers: Drivers = Drivers()) -> Simulation:
        s = self.scenario
        c, t, f, lab, srv, vs = (s.corpus, s.traffic, s.finetune, s.labour, s.serving,
                                 s.vector_store)
        p = {k: v.usd for k, v in self.prices.items()}
        m = np.arange(s.horizon_months, dtype=float)
        first = (m == 0).astype(float)
        later = 1.0 - first

        corpus = c.total_tokens * (1.0 + c.growth_per_month) ** m
        previous = np.concatenate([[corpus[0]], corpus[:-1]])
        added = np.where(m > 0, corpus - previous, 0.0)
        change = min(1.0, c.change_per_month * drivers.change)
        changed = np.where(m > 0, change * previous, 0.0)
        queries = t.queries_per_month * drivers.queries * (1.0 + t.growth_per_month) ** m
        rate = lab.rate_per_day * drivers.labour

        r_ft = self.ft_retrains_per_month(drivers)
        r_hy = 1.0 / f.hybrid_retrain_every_months if f.hybrid_retrain_every_months else 0.0
        ft_retrains, hy_retrains = _runs(m, r_ft), _runs(m, r_hy)
        scale = corpus / corpus[0] if f.grows_with_corpus else np.ones_like(corpus)
        run_tokens = training_tokens(f.examples * scale, f.tokens_per_example, f.epochs)
        api_run = token_cost(run_tokens, p["train"])
        if srv.train_gpu_hours is not None:
            gpu_hours_run = np.full_like(m, srv.train_gpu_hours)
        else:
            gpu_hours_run = run_tokens / srv.train_tokens_per_gpu_hour
        gpu_run = gpu_hours_run * p["train_gpu"]

        chunks = corpus / t.chunk_tokens
        written = np.where(m == 0, chunks, (added + changed) / t.chunk_tokens)
        vector = {
            "embedding_initial": first * token_cost(corpus[0], p["embedding"]),
            "embedding_updates": token_cost(added + changed, p["embedding"]),
            "vector_storage": vs.monthly + chunks * (vs.dimensions * 4 + vs.bytes_per_chunk)
            / 1e9 * vs.per_gb_month,
            "vector_reads": queries * vs.reads_per_query / 1e6 * vs.per_million_reads,
            "vector_writes": written / 1e6 * vs.per_million_writes,
        }
        minutes = srv.hours_per_day * srv.days_per_month * 60.0
        gpus = np.maximum(srv.min_gpus, np.ceil(queries / minutes / srv.requests_per_gpu_minute
                                                - 1e-9))
        tok = self.tokens

        def usage(arm: str, price_in: float, price_out: float) -> dict[str, np.ndarray]:
            q = tok[arm]
            return {"prompt_tokens": token_cost(queries * q.prompt * drivers.prompt, price_in),
                    "completion_tokens": token_cost(queries * q.completion, price_out)}

        rag_labour = rate * (first * lab.rag_build_days + later * lab.rag_upkeep_days_per_month)
        ft_labour = rate * (first * lab.dataset_build_days + ft_retrains * lab.dataset_refresh_days)
        lines = {
            "rag": {**vector, **usage("rag", p["rag_input"], p["rag_output"]),
                    "query_embedding": token_cost(queries * tok["rag"].embedding, p["embedding"]),
                    "labour": rag_labour},
            "ft_api": {**usage("ft", p["ft_input"], p["ft_output"]),
                       "training": (first + ft_retrains) * api_run,
                       "hosting": np.full_like(m, f.hosting_per_month),
                       "labour": ft_labour},
            "ft_self_hosted": {
                "training": (first + ft_retrains) * gpu_run,
                "gpu_serving": gpu_cost(p["serving_gpu"], srv.hours_per_day, srv.days_per_month,
                                        gpus),
                "labour": ft_labour + rate * (first * lab.self_host_setup_days
                                              + later * lab.self_host_upkeep_days_per_month)},
            "hybrid": {**vector, **usage("hybrid", p["ft_input"], p["ft_output"]),
                       "query_embedding": token_cost(queries * tok["hybrid"].embedding,
                                                     p["embedding"]),
                       "training": (first + hy_retrains) * api_run,
                       "hosting": np.full_like(m, f.hosting_per_month),
                       "labour": rag_labour + rate * (first * lab.dataset_build_days
                                                      + hy_retrains * lab.dataset_refresh_days)},
        }
        zero = np.zeros_like(m)
        options = {name: OptionCost(name, {line: np.asarray(lines[name].get(line, zero),
                                                            dtype=float) + zero
                                           for line in LINES})
                   for name in OPTIONS}
        derived = self._derived(drivers, corpus, run_tokens, api_run, gpu_hours_run, gpus,
                                r_ft, r_hy, change)
        return Simulation(months=m + 1, options=options, derived=derived)

    def _derived(self, drivers: Drivers, corpus: np.ndarray, run_tokens: np.ndarray,
                 api_run: np.ndarray, gpu_hours_run: np.ndarray, gpus: np.ndarray,
                 r_ft: float, r_hy: float, change: float) -> dict[str, Any]:
        """The intermediate numbers a reader needs to check the totals by hand."""
        s = self.scenario
        t, f, srv = s.traffic, s.finetune, s.serving
        updates = s.corpus.updates_per_month * drivers.change
        if change == 0 or (r_ft > 0 and r_ft >= updates - 1e-9):
            stale = 0.0
        elif r_ft > 0:
            stale = min(1.0, change / r_ft / 2)
        else:
            stale = min(1.0, change * s.horizon_months / 2)
        dataset_tokens = f.examples * f.tokens_per_example
        return {
            "corpus_tokens_initial": float(corpus[0]),
            "corpus_tokens_final": float(corpus[-1]),
            "chunks_initial": float(corpus[0] / t.chunk_tokens),
            "context_tokens_per_query": context_tokens(t.top_k, t.chunk_tokens),
            "tokens_per_query": {arm: vars(q) for arm, q in self.tokens.items()},
            "dataset_tokens_initial": dataset_tokens,
            "epochs": f.epochs,
            "training_tokens_per_run_initial": float(run_tokens[0]),
            "training_cost_per_epoch_initial": float(token_cost(dataset_tokens,
                                                                self.prices["train"].usd)),
            "training_cost_per_run_initial": float(api_run[0]),
            "self_hosted_training_gpu_hours_per_run_initial": float(gpu_hours_run[0]),
            "ft_retrains_per_month": r_ft,
            "hybrid_retrains_per_month": r_hy,
            "ft_average_stale_share": stale,
            "updates_per_month": updates,
            "gpus_serving_first_month": float(gpus[0]),
            "gpus_serving_last_month": float(gpus[-1]),
            "gpu_hours_per_month_first": float(gpus[0] * srv.hours_per_day * srv.days_per_month),
            "prices": {name: price.to_dict() for name, price in self.prices.items()},
        }
