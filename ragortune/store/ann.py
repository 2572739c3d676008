"""The embedded store's ANN index: faiss IVF with 8-bit scalar quantisation, kept as files
beside the LanceDB table and named by the data version it was built from.

Why faiss rather than LanceDB's own index: at 1M SciFact-derived chunks on 2 cores, LanceDB's
IVF_HNSW_SQ took 235 s to build and answered in 10.4 ms (p50) at recall@10 0.927; this index
built in 56 s and answers in 0.8 ms at recall@10 0.988 (docs/scale.md).
Candidates are re-scored with the exact float32 vectors the store already holds, so scores
and the gate are those of the exact scan. Rows written after the build (the index's tail) are
scanned exactly and rows deleted since are dropped, so a sync never waits for a rebuild.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragortune.io import write_atomic

ROWS_PER_LIST = 250  # IVF lists: one per 250 rows (4,000 at 1M)
NPROBE = 32  # lists searched: recall@10 >= 0.95 from 100k to 1M rows on the tuning half of
#               the SciFact queries (16 sufficed at 1M, not at 100k-200k: docs/scale.md)
CANDIDATES_PER_HIT = 4  # candidates re-scored exactly per hit asked for (at least MIN_CANDIDATES)
MIN_CANDIDATES = 40
TRAIN_PER_LIST = 40  # k-means sample: faiss asks for at least 39 points per list
REBUILD_SHARE = 0.1  # rebuild once a tenth of the rows are new or gone since the last build


def id_hashes(chunk_ids: Sequence[str]) -> np.ndarray:
    """Stable 64-bit keys of chunk ids: rows move between table versions, chunk ids do not."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(cid.encode(), digest_size=8).digest(),
                                       "little", signed=True) for cid in chunk_ids),
                       dtype=np.int64, count=len(chunk_ids))


def _files(folder: Path, version: int) -> tuple[Path, Path]:
    return folder / f"v{version}.faiss", folder / f"v{version}.keys.npy"


def _newest(folder: Path, version: int) -> int | None:
    """The newest version at or before `version` with a complete index."""
    built = [int(p.name[1:-len(".faiss")]) for p in folder.glob("v*.faiss")
             if p.name[1:-len(".faiss")].isdigit()]
    built = [v for v in built if v <= version and _files(folder, v)[1].exists()]
    return max(built, default=None)


def build(folder: Path, version: int, vectors: np.ndarray, keys: np.ndarray) -> None:
    """Train and fill the index over these rows (`keys`: their `id_hashes`) and write it (keys
    first, index last, each atomically: an index file is only ever seen complete with its keys)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    lists = max(1, len(vectors) // ROWS_PER_LIST)
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1],
                                          lists, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    sample = min(len(vectors), TRAIN_PER_LIST * lists)
    index.train(vectors[np.random.default_rng(0).choice(len(vectors), sample, replace=False)])
    index.add(vectors)
    index_file, keys_file = _files(folder, version)
    saved = io.BytesIO()
    np.save(saved, keys)
    write_atomic(keys_file, saved.getvalue())
    write_atomic(index_file, faiss.serialize_index(index).tobytes())


def stale_share(folder: Path, version: int, current: np.ndarray) -> float:
    """Share of the rows (`current`: their `id_hashes`) that the newest index misses (added
    since) or holds in vain (deleted since): 1.0 when there is no index."""
    built = _newest(folder, version)
    if built is None or not len(current):
        return 1.0
    indexed = np.load(_files(folder, built)[1])
    missing = np.count_nonzero(~np.isin(current, indexed))
    gone = np.count_nonzero(~np.isin(indexed, current))
    return (missing + gone) / len(current)


@dataclass
class AnnIndex:
    """An index loaded for one pinned table version: `rows` maps each indexed position to the
    row it has in this version (-1 when deleted since), `tail` lists the rows it lacks."""

    index: object
    rows: np.ndarray
    tail: np.ndarray

    @classmethod
    def load(cls, folder: Path, version: int, chunk_ids: Sequence[str]) -> AnnIndex | None:
        import faiss

        built = _newest(folder, version)
        if built is None:
            return None
        index_file, keys_file = _files(folder, built)
        index = faiss.read_index(str(index_file))
        index.nprobe = NPROBE
        indexed = np.load(keys_file)
        current = id_hashes(chunk_ids)
        order = np.argsort(current)
        at = np.searchsorted(current, indexed, sorter=order).clip(max=len(current) - 1)
        rows = np.where(current[order[at]] == indexed, order[at], -1)
        tail = np.flatnonzero(~np.isin(current, indexed))
        return cls(index, rows, tail)

    def candidates(self, query: np.ndarray, k: int) -> np.ndarray:
        """Rows worth scoring exactly for the top k: the index's nearest plus the whole tail."""
        wanted = max(MIN_CANDIDATES, CANDIDATES_PER_HIT * k)
        _, found = self.index.search(query.reshape(1, -1), wanted)
        found = found[0][found[0] >= 0]
        rows = self.rows[found]
        return np.union1d(rows[rows >= 0], self.tail)


def cleanup(folder: Path, keep_seconds: float) -> None:
    """Drop indexes older than the newest one once they are `keep_seconds` old (a reader
    pinned at an older version may still use its index until then)."""
    newest = _newest(folder, 2**62)
    for path in folder.glob("v*"):
        number = path.name[1:].split(".")[0]
        if (number.isdigit() and int(number) != newest
                and time.time() - path.stat().st_mtime > keep_seconds):
            path.unlink(missing_ok=True)
