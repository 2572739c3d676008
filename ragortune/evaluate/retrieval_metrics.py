"""Retrieval metrics over ranked document lists, vectorised over all queries at once.

Definitions follow trec_eval and ranx (the tests check every metric against ranx to 1e-6):
- A document is relevant when its grade is >= 1; grades of 0 or below give no gain.
- nDCG@k uses linear gain, grade / log2(rank + 1) (Jarvelin & Kekalainen; ranx `ndcg`,
  trec_eval `ndcg_cut`, the figures BEIR publishes); the ideal ranking sorts all judged grades.
- MRR@k: 1 / rank of the first relevant document within the top k, else 0.
- recall@k: relevant documents in the top k / relevant documents judged for the query.
- hit_rate@k: 1 when any relevant document is in the top k, else 0.
- Means are over every query in the qrels; a query with no ranking, or with no relevant
  document judged, scores 0 (as ranx with `make_comparable=True` and trec_eval `-c`).
- Ties: `rank_documents` orders by score descending, then document id ascending (code-point
  order), so a run is reproducible whatever order a store returns tied hits in. ranx has no
  tie rule of its own (it keeps insertion order for short runs), so the tests hand it runs
  already in this order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 100)


def rank_documents(hits: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Turn chunk hits `(doc_id, score)` into a document ranking; higher score is better.

    A document takes its best chunk's score, so it stands at its best chunk's rank;
    ties fall back to document id ascending.
    """
    pairs = list(hits)
    if not pairs:
        return []
    doc_ids = np.asarray([p[0] for p in pairs], dtype=str)
    scores = np.asarray([p[1] for p in pairs], dtype=np.float64)
    unique_ids, inverse = np.unique(doc_ids, return_inverse=True)  # ids come back sorted
    best = np.full(len(unique_ids), -np.inf)
    np.maximum.at(best, inverse, scores)
    order = np.lexsort((np.arange(len(unique_ids)), -best))  # primary: score desc; then id asc
    return list(zip(unique_ids[order].tolist(), best[order].tolist(), strict=True))


def metric_names(ks: Sequence[int] = DEFAULT_KS, ndcg_k: int = 10, mrr_k: int = 10) -> list[str]:
    """Names in report order; they match ranx's metric names."""
    return ([f"ndcg@{ndcg_k}", f"mrr@{mrr_k}"] + [f"recall@{k}" for k in ks]
            + [f"hit_rate@{k}" for k in ks])


@dataclass(frozen=True)
class RetrievalMetrics:
    """Per-query metric arrays aligned with `query_ids` (sorted), plus their means."""

    query_ids: tuple[str, ...]
    per_query: dict[str, np.ndarray]

    def mean(self) -> dict[str, float]:
        return {name: float(values.mean()) for name, values in self.per_query.items()}

    def rows(self) -> list[dict[str, object]]:
        """One plain dict per query (`query_id` then each metric), ready for JSON or CSV."""
        columns = {name: values.tolist() for name, values in self.per_query.items()}
        return [{"query_id": qid, **{name: col[i] for name, col in columns.items()}}
                for i, qid in enumerate(self.query_ids)]


def evaluate_rankings(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Sequence[str]],
    ks: Sequence[int] = DEFAULT_KS,
    ndcg_k: int = 10,
    mrr_k: int = 10,
) -> RetrievalMetrics:
    """Score ranked document ids per query against graded qrels (see module docstring).

    Queries in `rankings` but not in `qrels` are ignored; a ranking must not repeat a document.
    """
    if not qrels:
        raise ValueError("no judged queries: qrels are empty")
    if min(ks, default=1) < 1 or ndcg_k < 1 or mrr_k < 1:
        raise ValueError("cutoffs must be >= 1")
    qids = sorted(qrels)
    n = len(qids)
    depth = max((*ks, ndcg_k, mrr_k))

    # Flatten the runs (cut at the deepest cutoff) and the qrels into parallel arrays.
    run_lists = [list(rankings.get(q, ()))[:depth] for q in qids]
    run_len = np.fromiter((len(r) for r in run_lists), dtype=np.int64, count=n)
    run_docs = [d for r in run_lists for d in r]
    qrel_len = np.fromiter((len(qrels[q]) for q in qids), dtype=np.int64, count=n)
    qrel_docs = [d for q in qids for d in qrels[q]]
    qrel_grades = np.fromiter((g for q in qids for g in qrels[q].values()), dtype=np.float64,
                              count=int(qrel_len.sum()))

    # One shared integer code per document id, then (query, doc) keys joined by binary search.
    vocab, codes = np.unique(np.asarray(run_docs + qrel_docs, dtype=str), return_inverse=True)
    width = max(len(vocab), 1)
    run_q = np.repeat(np.arange(n), run_len)
    run_keys = run_q * width + codes[: len(run_docs)]
    qrel_q = np.repeat(np.arange(n), qrel_len)
    qrel_keys = qrel_q * width + codes[len(run_docs):]
    if len(np.unique(run_keys)) != len(run_keys):
        _, first, counts = np.unique(run_keys, return_index=True, return_counts=True)
        i = first[np.argmax(counts > 1)]
        raise ValueError(f"ranking for query {qids[run_q[i]]!r} repeats document "
                         f"{run_docs[i]!r}; use rank_documents() to merge chunk hits")
    order = np.argsort(qrel_keys)
    sorted_keys, sorted_grades = qrel_keys[order], qrel_grades[order]
    pos = np.minimum(np.searchsorted(sorted_keys, run_keys), max(len(sorted_keys) - 1, 0))
    found = sorted_keys[pos] == run_keys if len(sorted_keys) else np.zeros(len(run_keys), bool)
    run_grades = np.where(found, sorted_grades[pos] if len(sorted_keys) else 0.0, 0.0)

    # grades[i, r]: grade of the document at rank r+1 for query i (0 past the run's end).
    grades = np.zeros((n, depth))
    rank = np.arange(len(run_docs)) - np.repeat(np.cumsum(run_len) - run_len, run_len)
    grades[run_q, rank] = run_grades
    relevant = grades >= 1
    gains = np.where(relevant, grades, 0.0)

    # Ideal gains: each query's relevant grades sorted descending, cut at ndcg_k.
    is_rel = qrel_grades >= 1
    iq, ig = qrel_q[is_rel], qrel_grades[is_rel]
    o = np.lexsort((-ig, iq))
    iq, ig = iq[o], ig[o]
    n_rel = np.bincount(iq, minlength=n)
    irank = np.arange(len(iq)) - np.repeat(np.cumsum(n_rel) - n_rel, n_rel)
    keep = irank < ndcg_k
    ideal = np.zeros((n, ndcg_k))
    ideal[iq[keep], irank[keep]] = ig[keep]

    discount = 1.0 / np.log2(np.arange(2, depth + 2))
    dcg = gains[:, :ndcg_k] @ discount[:ndcg_k]
    idcg = ideal @ discount[:ndcg_k]
    per_query: dict[str, np.ndarray] = {
        f"ndcg@{ndcg_k}": np.divide(dcg, idcg, out=np.zeros(n), where=idcg > 0),
    }
    top = relevant[:, :mrr_k]
    first = np.argmax(top, axis=1)
    per_query[f"mrr@{mrr_k}"] = np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)
    cumulative = np.cumsum(relevant, axis=1)
    for k in ks:
        per_query[f"recall@{k}"] = np.divide(cumulative[:, k - 1], n_rel, out=np.zeros(n),
                                             where=n_rel > 0)
    for k in ks:
        per_query[f"hit_rate@{k}"] = (cumulative[:, k - 1] > 0).astype(np.float64)
    return RetrievalMetrics(query_ids=tuple(qids), per_query=per_query)
