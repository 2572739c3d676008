"""Dense, BM25 and hybrid retrieval over a store, and the score gate.

Score scales (the `score` field): dense = cosine similarity in [-1, 1]; bm25 = raw BM25,
unbounded and corpus dependent; hybrid = reciprocal-rank fusion, sum of 1/(60 + rank).
Every hit also carries `similarity`, the cosine of query and chunk, whatever the mode:
`min_score` gates on it, so one threshold means the same thing in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ragortune.errors import InputError
from ragortune.store import StoredChunk, VectorStore

MODES = ("dense", "bm25", "hybrid")
RRF_K = 60


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    text: str
    score: float
    similarity: float
    source: str
    title: str
    heading: str
    position: int


def reciprocal_rank_fusion(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Sum of 1/(k + rank) over the rankings each id appears in (rank starts at 1)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def check_request(mode: str, k: int) -> None:
    if mode not in MODES:
        raise InputError(f"unknown search mode '{mode}': use one of {', '.join(MODES)}")
    if k < 1:
        raise InputError(f"-k must be at least 1, not {k}")


def search(store: VectorStore, query: str, query_vector: np.ndarray, k: int = 5,
           mode: str = "hybrid", min_score: float | None = None) -> list[Hit]:
    check_request(mode, k)
    if mode == "dense":
        found = store.dense_search(query_vector, k)
        scored = [(chunk, chunk.score) for chunk in found]
    elif mode == "bm25":
        found = store.text_search(query, k)
        scored = [(chunk, chunk.score) for chunk in found]
    else:
        depth = max(2 * k, 50)
        dense = store.dense_search(query_vector, depth)
        lexical = store.text_search(query, depth)
        by_id = {chunk.chunk_id: chunk for chunk in dense + lexical}
        fused = reciprocal_rank_fusion([[c.chunk_id for c in dense], [c.chunk_id for c in lexical]])
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        scored = [(by_id[cid], score) for cid, score in best]
    if not scored:
        return []
    chunks = [chunk for chunk, _ in scored]
    similarities = (np.array([c.score for c in chunks]) if mode == "dense"
                    else store.similarities(query_vector, [c.chunk_id for c in chunks]))
    hits = [_hit(chunk, score, float(sim)) for (chunk, score), sim in zip(scored, similarities)]
    if min_score is not None:
        hits = [hit for hit in hits if hit.similarity >= min_score]
    return hits


def _hit(chunk: StoredChunk, score: float, similarity: float) -> Hit:
    return Hit(chunk.chunk_id, chunk.doc_id, chunk.text, float(score), similarity, chunk.source,
               chunk.title, chunk.heading, chunk.position)
