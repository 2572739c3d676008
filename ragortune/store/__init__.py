"""Vector stores: the small protocol every store implements, and the row schema they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

SEARCH_TEXT = "search_text"  # title + heading + text: what is embedded and BM25-indexed
COLUMNS = ("chunk_id", "doc_key", "doc_id", "source", "title", "heading", "position", "text",
           "content_hash")


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the store returns it, with the score of the search that found it."""

    chunk_id: str
    doc_key: str
    doc_id: str
    source: str
    title: str
    heading: str
    position: int
    text: str
    content_hash: str
    score: float


class VectorStore(Protocol):
    """What sync and retrieval call on a store. Versions, commits and roll-back differ per
    engine (Lance versions + a manifest file, PostgreSQL transactions) and live with the KB
    that owns the store (kb/knowledge_base.py, kb/postgres.py).

    A store that can fetch both hybrid candidate lists and their cosines at once may also
    offer `hybrid_candidates(query, vector, depth) -> (dense, lexical, {chunk_id: cosine})`;
    retrieval then uses it (PostgreSQL: one round trip instead of three)."""

    def add(self, rows: Sequence[dict], vectors: np.ndarray) -> None: ...

    def delete(self, chunk_ids: Sequence[str]) -> None: ...

    def vectors_by_hash(self, content_hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def dense_search(self, vector: np.ndarray, k: int) -> list[StoredChunk]: ...

    def text_search(self, query: str, k: int) -> list[StoredChunk]: ...

    def all_chunks(self) -> list[StoredChunk]: ...

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str]) -> np.ndarray: ...
