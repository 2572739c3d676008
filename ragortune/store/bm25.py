"""BM25 over chunk texts with bm25s, saved beside the store version it indexes.

An in-memory sparse index answers a query in well under a millisecond where LanceDB's
full-text search takes 6-12 ms per query (SciFact, 10.5k chunks, 2 cores), and its English
stemming and stop words match the reference BM25 pipelines.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

IDS_FILE = "chunk_ids.json"
_STEMMER = Stemmer.Stemmer("english")


def _tokenize(texts: Sequence[str], return_ids: bool):
    return bm25s.tokenize(list(texts), stopwords="en", stemmer=_STEMMER, return_ids=return_ids,
                          show_progress=False)


class TextIndex:
    """BM25 scores of a query against every chunk; `search` returns the best (chunk_id, score)."""

    def __init__(self, retriever: bm25s.BM25 | None, chunk_ids: list[str]):
        self.retriever = retriever
        self.chunk_ids = chunk_ids

    @classmethod
    def build(cls, chunk_ids: Sequence[str], texts: Sequence[str]) -> TextIndex:
        if not chunk_ids:
            return cls(None, [])
        retriever = bm25s.BM25()
        retriever.index(_tokenize(texts, return_ids=True), show_progress=False)
        return cls(retriever, list(chunk_ids))

    def save(self, folder: Path) -> None:
        """Write to a temporary folder, then rename: a reader never sees half an index."""
        if self.retriever is None or folder.exists():
            return
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self.retriever.save(str(partial), show_progress=False)
        (partial / IDS_FILE).write_text(json.dumps(self.chunk_ids))
        partial.rename(folder)

    @classmethod
    def load(cls, folder: Path) -> TextIndex | None:
        if not (folder / IDS_FILE).is_file():
            return None
        retriever = bm25s.BM25.load(str(folder), mmap=True)
        return cls(retriever, json.loads((folder / IDS_FILE).read_text()))

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        if self.retriever is None or k <= 0:
            return []
        tokens = _tokenize([query], return_ids=False)[0]
        if not tokens:
            return []
        scores = np.asarray(self.retriever.get_scores(tokens))
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        order = matched[np.lexsort((matched, -scores[matched]))]
        return [(self.chunk_ids[i], float(scores[i])) for i in order]
