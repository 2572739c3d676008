"""The embedded default store: one LanceDB table in the KB folder.

Lance commits every write as a new version. Readers pin the version that the KB's
manifest names, so an ingest in progress (or one killed half-way) is never seen.
Dense search is an exact numpy scan over the pinned version's vectors, loaded once:
at KB sizes this tool targets it beats Lance's flat path by an order of magnitude.
Past `ann_min_rows()` chunks (measured crossover, see docs/scale.md) a sync ends by building
a faiss index beside the table (store/ann.py); readers take candidates from it and score them
exactly, scanning rows written since the build; a tenth of the rows changed means a rebuild.
BM25 is a bm25s index saved per version under `bm25/` (see store/bm25.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from ragortune.store import COLUMNS, SEARCH_TEXT, StoredChunk, ann
from ragortune.store.bm25 import TextIndex

os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCEDB_LOG", "error")
logging.getLogger("lancedb").setLevel(logging.ERROR)

TABLE = "chunks"

BM25_FOLDER = "bm25"
KEEP_OLD_SECONDS = 3600
ANN_MIN_ROWS = 200_000  # below, the exact scan is exact and fast enough (docs/scale.md)
ANN_ENV = "RAGORTUNE_ANN_MIN_ROWS"
ANN_FOLDER = "ann"


def ann_min_rows() -> int:
    """Chunks from which the KB keeps an ANN index: `RAGORTUNE_ANN_MIN_ROWS` or ANN_MIN_ROWS."""
    value = os.environ.get(ANN_ENV)
    return int(value) if value else ANN_MIN_ROWS


def _schema(dimension: int) -> pa.Schema:
    fields = [pa.field(name, pa.int32() if name == "position" else pa.string())
              for name in COLUMNS]
    fields.append(pa.field(SEARCH_TEXT, pa.string()))
    fields.append(pa.field("vector", pa.list_(pa.float32(), dimension)))
    return pa.schema(fields)


class LanceStore:
    def __init__(self, folder: Path, dimension: int, read_version: int | None = None):
        import lancedb

        self.folder = Path(folder)
        self.dimension = dimension
        self.db = lancedb.connect(str(self.folder))
        if TABLE in self.db.list_tables().tables:
            self.table = self.db.open_table(TABLE)
        else:
            self.table = self.db.create_table(TABLE, schema=_schema(dimension))
        self.read_version = read_version
        if read_version is not None:
            self.table.checkout(read_version)
        self._snapshot: tuple[dict[str, list], np.ndarray, dict[str, int]] | None = None
        self._text_index: TextIndex | None = None
        self._ann: ann.AnnIndex | None = None

    # -- writing -----------------------------------------------------------------------
    def version(self) -> int:
        return int(self.table.version)

    def restore(self, version: int) -> None:
        """Roll the table back to `version` (a new version with that content)."""
        if self.table.version != version:
            self.table.checkout(version)
            self.table.restore()

    def add(self, rows: Sequence[dict], vectors: np.ndarray) -> None:
        if not rows:
            return
        columns = {name: [row[name] for row in rows] for name in COLUMNS}
        columns[SEARCH_TEXT] = [row[SEARCH_TEXT] for row in rows]
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
        columns["vector"] = pa.FixedSizeListArray.from_arrays(flat, self.dimension)
        self.table.add(pa.table(columns, schema=_schema(self.dimension)))

    def delete(self, chunk_ids: Sequence[str]) -> None:
        for start in range(0, len(chunk_ids), 1000):
            batch = chunk_ids[start:start + 1000]
            quoted = ", ".join("'" + cid.replace("'", "''") + "'" for cid in batch)
            self.table.delete(f"chunk_id IN ({quoted})")

    def vectors_by_hash(self, content_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of chunks whose text is unchanged, so they are not embedded again."""
        found: dict[str, np.ndarray] = {}
        hashes = list(content_hashes)
        for start in range(0, len(hashes), 1000):
            quoted = ", ".join(f"'{h}'" for h in hashes[start:start + 1000])
            data = (self.table.search().where(f"content_hash IN ({quoted})")
                    .select(["content_hash", "vector"]).limit(None).to_arrow())
            vectors = _matrix(data.column("vector"), self.dimension)
            for value, vector in zip(data.column("content_hash").to_pylist(), vectors):
                found.setdefault(value, vector)
        return found

    def finish_write(self) -> int:
        """Compact and build the BM25 index of the new version; returns the version to pin."""
        if self.table.count_rows() > 0:
            self.table.optimize()
        version = self.version()
        self._build_text_index().save(self._text_index_folder(version))
        return version

    def build_index(self) -> None:
        """Past `ann_min_rows()`, (re)build the ANN index over the committed version once a
        tenth of its rows are new or gone since the last build (store/ann.py). Called after the
        data version is committed: readers meanwhile scan exactly, then move to the index."""
        rows = self.table.count_rows()
        if rows < ann_min_rows():
            return
        version = self.version()
        ids = (self.table.search().select(["chunk_id"]).limit(None).to_arrow()
               .column("chunk_id").to_pylist())  # the vectors are read only for a rebuild
        if ann.stale_share(self.folder / ANN_FOLDER, version, ann.id_hashes(ids)) <= \
                ann.REBUILD_SHARE:
            return
        data = self.table.to_arrow().select(["chunk_id", "vector"])
        ann.build(self.folder / ANN_FOLDER, version, _matrix(data.column("vector"), self.dimension),
                  ann.id_hashes(data.column("chunk_id").to_pylist()))

    def _index(self) -> ann.AnnIndex | None:
        """The ANN index for this version once the KB is past the threshold and one is built
        (looked for again on each search until then: a sync builds it after committing)."""
        if self._ann is None:
            columns, vectors, _ = self._load()
            if len(vectors) >= ann_min_rows():
                self._ann = ann.AnnIndex.load(self.folder / ANN_FOLDER,
                                              self.read_version or self.version(),
                                              columns["chunk_id"])
        return self._ann

    @property
    def uses_index(self) -> bool:
        """Whether dense search takes its candidates from the ANN index (else an exact scan)."""
        return self._index() is not None

    def cleanup(self) -> None:
        """Drop versions older than an hour; called only after the manifest moved on."""
        self.table.optimize(cleanup_older_than=timedelta(seconds=KEEP_OLD_SECONDS))
        folders = sorted(self._text_index_folder(0).parent.glob("v*"), key=_version_of)
        for folder in folders[:-1]:
            if time.time() - folder.stat().st_mtime > KEEP_OLD_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        ann.cleanup(self.folder / ANN_FOLDER, KEEP_OLD_SECONDS)

    # -- reading -----------------------------------------------------------------------
    def _load(self) -> tuple[dict[str, list], np.ndarray, dict[str, int]]:
        """Columns as Python lists (building result rows from them is 5x faster than from
        Arrow), the vectors as one matrix, and each chunk id's row."""
        if self._snapshot is None:
            data = self.table.to_arrow()
            vectors = _matrix(data.column("vector"), self.dimension)
            columns = {name: data.column(name).to_pylist() for name in COLUMNS}
            ids = {cid: i for i, cid in enumerate(columns["chunk_id"])}
            self._snapshot = (columns, vectors, ids)
        return self._snapshot

    def _rows(self, indices: Sequence[int], scores: Sequence[float]) -> list[StoredChunk]:
        columns, _, _ = self._load()
        return [StoredChunk(**{name: values[i] for name, values in columns.items()},
                            score=float(score)) for i, score in zip(indices, scores)]

    def dense_search(self, vector: np.ndarray, k: int) -> list[StoredChunk]:
        _, vectors, _ = self._load()
        if len(vectors) == 0 or k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32)
        index = self._index()
        if index is not None:
            top = index.candidates(query, k)
            scores = vectors[top] @ query  # the exact cosine, as the gate expects
            best = np.lexsort((top, -scores))[:k]
            return self._rows(top[best], scores[best])
        scores = vectors @ query
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        return self._rows(top, scores[top])

    def text_search(self, query: str, k: int) -> list[StoredChunk]:
        if not query.strip() or k <= 0:
            return []
        if self._text_index is None:
            version = self.read_version if self.read_version is not None else self.version()
            self._text_index = (TextIndex.load(self._text_index_folder(version))
                                or self._build_text_index())
        _, _, ids = self._load()
        found = self._text_index.search(query, k)
        return self._rows([ids[cid] for cid, _ in found], [score for _, score in found])

    def _text_index_folder(self, version: int) -> Path:
        return self.folder / BM25_FOLDER / f"v{version}"

    def _build_text_index(self) -> TextIndex:
        data = self.table.to_arrow().select(["chunk_id", SEARCH_TEXT])
        return TextIndex.build(data.column("chunk_id").to_pylist(),
                               data.column(SEARCH_TEXT).to_pylist())

    def all_chunks(self) -> list[StoredChunk]:
        _, vectors, _ = self._load()
        return self._rows(range(len(vectors)), [0.0] * len(vectors))

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str]) -> np.ndarray:
        _, vectors, ids = self._load()
        rows = [ids[cid] for cid in chunk_ids]
        return vectors[rows] @ np.asarray(vector, dtype=np.float32)


def _version_of(folder: Path) -> int:
    return int(folder.name[1:]) if folder.name[1:].isdigit() else -1


def _matrix(column: pa.ChunkedArray, dimension: int) -> np.ndarray:
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(-1, dimension)
