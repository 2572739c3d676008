"""Retrieval evaluation: index a data set's corpus into a KB, run its judged queries, score them.

The KB is the product's own (`open_kb` + incremental `sync`), so the figures measure what
`ragortune search` does. Chunk hits become a document ranking (a document stands at its
best chunk's rank, ties by document id), cut at the deepest cutoff, then scored.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragortune.embed import load_embedder
from ragortune.errors import InputError
from ragortune.evaluate.answer_metrics import percentiles
from ragortune.evaluate.datasets import Dataset
from ragortune.evaluate.retrieval_metrics import (
    DEFAULT_KS,
    RetrievalMetrics,
    evaluate_rankings,
    rank_documents,
)
from ragortune.kb import KnowledgeBase, open_kb
from ragortune.kb.sync import ProgressCallback, SyncReport, sync
from ragortune.retrieve import search

QueryProgress = Callable[[int, int], None]  # queries done, queries total
CHUNK_FACTOR = 2  # chunk hits fetched per document wanted, so chunked documents still fill 100


def default_kb_path(work: Path, dataset: Dataset, embedder: str, chunk_size: int,
                    chunk_overlap: int) -> Path:
    """One KB per corpus file and build settings, so runs reuse it and never mix corpora."""
    corpus = str(dataset.corpus_path.resolve())
    tag = hashlib.sha256(corpus.encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", embedder).strip("-")
    name = f"{dataset.path.resolve().name}-{tag}"
    return work / "kb" / name / f"{slug}-c{chunk_size}-o{chunk_overlap}"


def index_dataset(kb: KnowledgeBase, dataset: Dataset,
                  on_progress: ProgressCallback | None = None) -> SyncReport:
    """Bring the KB in line with the corpus (only new or changed documents are embedded)."""
    report = sync(kb, [dataset.corpus_path], on_progress=on_progress)
    if report.skipped:
        raise InputError(f"{dataset.corpus_path}: could not be indexed: {report.skipped[0].reason}")
    return report


@dataclass(frozen=True)
class RetrievalResult:
    """Rankings, metrics and costs of one pass over the judged queries."""

    mode: str
    ks: tuple[int, ...]
    depth: int
    metrics: RetrievalMetrics
    rankings: dict[str, list[tuple[str, float]]]
    latency_ms: np.ndarray
    embedding_tokens: np.ndarray
    embed_seconds: float
    search_seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        return self.metrics.mean()

    def rows(self, dataset: Dataset, top: int = 10) -> list[dict[str, Any]]:
        """Per query: metrics, relevant count, rank of the first relevant document, top ids."""
        out = []
        for i, row in enumerate(self.metrics.rows()):
            qid = str(row["query_id"])
            judged = dataset.qrels[qid]
            ranked = [doc for doc, _ in self.rankings.get(qid, [])]
            first = next((r for r, d in enumerate(ranked, 1) if judged.get(d, 0) >= 1), None)
            out.append({**row, "n_relevant": sum(g >= 1 for g in judged.values()),
                        "first_relevant_rank": first, "latency_ms": float(self.latency_ms[i]),
                        "embedding_tokens": int(self.embedding_tokens[i]),
                        "retrieved": ranked[:top], "query": dataset.queries[qid].text})
        return out

    def usage(self) -> dict[str, Any]:
        return {"embedding_tokens_per_query": float(self.embedding_tokens.mean()),
                "latency_ms": percentiles(self.latency_ms),
                "embed_queries_s": round(self.embed_seconds, 3),
                "search_s": round(self.search_seconds, 3)}


def run_queries(kb: KnowledgeBase, dataset: Dataset, mode: str = "hybrid",
                ks: Sequence[int] = DEFAULT_KS, min_score: float | None = None,
                on_progress: QueryProgress | None = None) -> RetrievalResult:
    """Search every judged query (embedded in one batch) and score the document rankings.

    `latency_ms` is the search alone per query; batch embedding time is `embed_seconds`.
    """
    ks = tuple(sorted(set(ks)))
    if not ks or ks[0] < 1:
        raise InputError(f"-k cutoffs must be positive integers, not {list(ks)}")
    if not dataset.qrels:
        raise InputError(f"{dataset.path}: no qrels to score retrieval against; pass --split")
    depth = max(*ks, 10)
    qids = sorted(dataset.qrels)
    texts = [dataset.queries[q].text for q in qids]
    started = time.perf_counter()
    vectors = kb.embedder.embed(texts)
    embed_seconds = time.perf_counter() - started
    tokens = np.asarray(kb.embedder.count_tokens(texts), dtype=np.int64)
    latency = np.zeros(len(qids))
    rankings: dict[str, list[tuple[str, float]]] = {}
    for i, (qid, text) in enumerate(zip(qids, texts, strict=True)):
        t0 = time.perf_counter()
        hits = search(kb, text, k=depth * CHUNK_FACTOR, mode=mode, min_score=min_score,
                         query_vector=vectors[i])
        latency[i] = (time.perf_counter() - t0) * 1000
        rankings[qid] = rank_documents((hit.doc_id, hit.score) for hit in hits)[:depth]
        if on_progress:
            on_progress(i + 1, len(qids))
    metrics = evaluate_rankings(dataset.qrels, {q: [d for d, _ in r] for q, r in rankings.items()},
                                ks=ks)
    return RetrievalResult(
        mode=mode, ks=ks, depth=depth, metrics=metrics, rankings=rankings, latency_ms=latency,
        embedding_tokens=tokens, embed_seconds=embed_seconds,
        search_seconds=float(latency.sum()) / 1000,
        settings={"mode": mode, "ks": list(ks), "depth": depth, "chunk_hits": depth * CHUNK_FACTOR,
                  "min_score": min_score},
    )


SWEEP_KEYS = {"chunk_size": int, "chunk_overlap": int, "mode": str, "k": int, "embedder": str}


def parse_sweep(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`["chunk_size=128,256 mode=dense,bm25", "k=3,5"]` -> {"chunk_size": [128, 256], ...}."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        for part in spec.split():
            key, sep, values = part.partition("=")
            if not sep or key not in SWEEP_KEYS or not values:
                raise InputError(f"--sweep {part!r}: write NAME=V1,V2,... with NAME one of "
                                 f"{', '.join(SWEEP_KEYS)}")
            try:
                grid[key] = [SWEEP_KEYS[key](v) for v in values.split(",") if v]
            except ValueError:
                raise InputError(f"--sweep {part!r}: values of {key} must be integers") from None
    return grid


def sweep_configs(grid: dict[str, list[Any]], defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the swept build/search settings (k only changes the cutoffs)."""
    keys = ("embedder", "chunk_size", "chunk_overlap", "mode")
    axes = [grid.get(key, [defaults[key]]) for key in keys]
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*axes)]


def sweep_rows(config: dict[str, Any], result: RetrievalResult,
               swept_ks: Sequence[int] | None) -> list[dict[str, Any]]:
    """One row per configuration (and per swept k, with its recall and hit rate)."""
    means = result.means()
    base = {**config, **means, "latency_ms_p50": result.usage()["latency_ms"]["p50"]}
    if not swept_ks:
        return [base]
    return [{**config, "k": k, "ndcg@10": means["ndcg@10"], "mrr@10": means["mrr@10"],
             "recall": means[f"recall@{k}"], "hit_rate": means[f"hit_rate@{k}"],
             "latency_ms_p50": base["latency_ms_p50"]} for k in swept_ks]


SELECT_BY = "ndcg@10"  # the metric that picks a sweep's configuration


def best_of(results: Sequence[RetrievalResult]) -> int:
    """Which of a sweep's results to report and record: the best nDCG@10, the first listed
    among ties."""
    if not results:
        raise ValueError("no results to choose from")
    scores = [r.means()[SELECT_BY] for r in results]
    return scores.index(max(scores))


def open_eval_kb(kb: Path | None, work: Path, data: Dataset, config: dict[str, Any],
                 given: set[str]) -> KnowledgeBase:
    """The user's --kb (checked against the settings they gave), else the cached one in WORK."""
    if kb is not None:
        return open_kb(kb, create=True,
                       embedder=config["embedder"] if "embedder" in given else None,
                       chunk_size=config["chunk_size"] if "chunk_size" in given else None,
                       chunk_overlap=config["chunk_overlap"] if "chunk_overlap" in given
                       else None)
    path = default_kb_path(work, data, config["embedder"], config["chunk_size"],
                           config["chunk_overlap"])
    return open_kb(path, embedder=load_embedder(config["embedder"]), create=True,
                   chunk_size=config["chunk_size"], chunk_overlap=config["chunk_overlap"])
