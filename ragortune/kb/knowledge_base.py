"""A knowledge base on disk: the store's files, a manifest, and the settings it was built with.

Layout of the KB folder:
  kb.json        how it was built (embedder, dimension, chunk size/overlap, threshold)
  manifest.json  the last consistent state: store version, and per document its
                 content hash and chunk ids/hashes. Written atomically, last.
  store/         the LanceDB table
Readers only ever see the store version the manifest names.

The same KB can live in PostgreSQL instead (kb/postgres.py): a `Catalog` is where a KB keeps
its settings and manifest, and how its writes commit; everything else is shared.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ragortune.embed import Embedder, load_embedder
from ragortune.errors import KnowledgeBaseError
from ragortune.io import utc_now, write_json_atomic
from ragortune.kb.manifest import KBSettings, Manifest, check_settings, new_settings
from ragortune.store import StoredChunk, VectorStore
from ragortune.store.lance import LanceStore

SETTINGS_FILE = "kb.json"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".write.lock"
STORE_URL_PREFIXES = ("postgresql://", "postgres://")


class Catalog(Protocol):
    """Where a KB keeps its settings and manifest, and how a sync's writes become visible."""

    def load_manifest(self) -> Manifest: ...

    def save_settings(self, settings: KBSettings) -> None: ...

    def writing(self) -> Any:
        """Context manager: the KB's one writer (fails at once if another holds it), with
        whatever a killed writer left undone."""
        ...

    def commit(self, writer: Any, documents: dict[str, dict[str, Any]], final: bool) -> Manifest:
        """Make the writes so far and the manifest `documents` visible together."""
        ...

    def reader(self, current: Manifest | None) -> tuple[VectorStore, Manifest | None]: ...

    def summary(self) -> dict[str, Any]:
        """documents, chunks, last_sync and store_version, without reading every manifest row."""
        ...

    def size_bytes(self) -> int: ...


class FolderCatalog:
    """The embedded default: kb.json and manifest.json beside a LanceDB table in `store/`."""

    def __init__(self, path: Path, dimension: int):
        self.path = path
        self.dimension = dimension
        self._reader: LanceStore | None = None
        self._reader_version: int | None = None
        self._manifest_stat: tuple[int, int, int] | None = None

    def load_manifest(self) -> Manifest:
        file = self.path / MANIFEST_FILE
        if not file.exists():
            return Manifest()
        data = json.loads(file.read_text())
        return Manifest(data["version"], data.get("synced_at"), data["documents"])

    def save_manifest(self, manifest: Manifest) -> None:
        write_json_atomic(self.path / MANIFEST_FILE, {
            "version": manifest.version, "synced_at": manifest.synced_at,
            "documents": manifest.documents})

    def save_settings(self, settings: KBSettings) -> None:
        write_json_atomic(self.path / SETTINGS_FILE, settings.model_dump())

    def store(self) -> LanceStore:
        return LanceStore(self.path / "store", self.dimension)

    @contextmanager
    def writing(self) -> Iterator[LanceStore]:
        with open(self.path / LOCK_FILE, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise KnowledgeBaseError(
                    f"another ingest is writing to {self.path}; wait for it to finish") from None
            writer = self.store()
            writer.restore(self.load_manifest().version)  # undo a run that died mid-batch
            yield writer

    def commit(self, writer: LanceStore, documents: dict[str, dict[str, Any]],
               final: bool) -> Manifest:
        """The store is written first, the manifest atomically last: a crash in between
        leaves the store ahead, and the next writer rolls it back (`writing`)."""
        version = writer.finish_write() if final else writer.version()
        manifest = Manifest(version, utc_now(), dict(documents))
        self.save_manifest(manifest)
        if final:
            # readers already see the new rows (exact scan); past the size threshold the ANN
            # index is then built for this version, and readers take it up once it is written
            writer.build_index()
            writer.cleanup()
        return manifest

    def reader(self, current: Manifest | None) -> tuple[LanceStore, Manifest]:
        """The store pinned at the manifest's version; re-pinned when a sync has committed.
        The manifest is re-read only when its file changed, so searches stay cheap."""
        stat = (self.path / MANIFEST_FILE).stat()
        if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._manifest_stat:
            current = self.load_manifest()
            self._manifest_stat = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if current is None:
            current = self.load_manifest()
        if self._reader is None or self._reader_version != current.version:
            self._reader = LanceStore(self.path / "store", self.dimension,
                                      read_version=current.version or None)
            self._reader_version = current.version
        return self._reader, current

    def summary(self) -> dict[str, Any]:
        manifest = self.load_manifest()
        return {"documents": len(manifest.documents), "chunks": manifest.chunk_count,
                "last_sync": manifest.synced_at, "store_version": manifest.version}

    def size_bytes(self) -> int:
        store = self.path / "store"
        return sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) if store.exists() else 0


class KnowledgeBase:
    def __init__(self, path: Path | str, settings: KBSettings, embedder: Embedder | None = None,
                 catalog: Catalog | None = None):
        self.path = path  # a folder, or for PostgreSQL the locator `URL#name`
        self.settings = settings
        self._embedder = embedder
        self.catalog = catalog if catalog is not None else FolderCatalog(Path(path),
                                                                         settings.dimension)
        self._manifest: Manifest | None = None  # read on first use: a big KB's is not small

    @property
    def manifest(self) -> Manifest:
        """The manifest as of the last read (sync, search or first use)."""
        if self._manifest is None:
            self._manifest = self.load_manifest()
        return self._manifest

    @property
    def embedder(self) -> Embedder:
        """Loaded on first use: `status` and argument errors should not wait for a model."""
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedder)
        return self._embedder

    def load_manifest(self) -> Manifest:
        return self.catalog.load_manifest()

    def save_settings(self) -> None:
        self.catalog.save_settings(self.settings)

    def writing(self) -> Any:
        """Context manager yielding the KB's only writer (see `Catalog.writing`)."""
        return self.catalog.writing()

    def commit(self, writer: Any, documents: dict[str, dict[str, Any]], final: bool) -> None:
        self._manifest = self.catalog.commit(writer, documents, final)

    def reader(self) -> VectorStore:
        """The store as of the last consistent state (what searches read)."""
        store, self._manifest = self.catalog.reader(self._manifest)
        return store

    def chunks(self) -> list[StoredChunk]:
        """Every chunk the KB holds at its last consistent state (score 0)."""
        return self.reader().all_chunks()

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed([query])[0]

    def summary(self) -> dict[str, Any]:
        """documents, chunks, last_sync and store_version now: cheap on every store (a count
        query on PostgreSQL), for health checks."""
        return self.catalog.summary()

    def status(self) -> dict[str, Any]:
        summary = self.summary()
        return {"kb": _shown(self.path), "documents": summary["documents"],
                "chunks": summary["chunks"], "embedder": self.settings.embedder,
                "dimension": self.settings.dimension, "chunk_size": self.settings.chunk_size,
                "chunk_overlap": self.settings.chunk_overlap, "min_score": self.settings.min_score,
                "size_bytes": self.catalog.size_bytes(), "last_sync": summary["last_sync"],
                "store_version": summary["store_version"]}


def _shown(path: Path | str) -> str:
    """The KB's locator without a password."""
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(path))


def open_kb(path: str | Path = ".ragortune", embedder: Embedder | str | None = None,
            create: bool = False, chunk_size: int | None = None,
            chunk_overlap: int | None = None, store: str | None = None) -> KnowledgeBase:
    """Open the KB at `path`; with `create`, make it (built with `embedder`) if absent.

    `path` is a folder, or `postgresql://...#name` for a KB in PostgreSQL; `store` (a
    PostgreSQL URL) puts the KB named `path` in that database instead of a folder.
    Opening with a different embedder or chunking than the KB was built with is an error,
    since vectors from two models, or chunks cut two ways, cannot be mixed."""
    if store or str(path).startswith(STORE_URL_PREFIXES):
        from ragortune.kb.postgres import open_postgres_kb

        url, _, name = (store, "#", str(path)) if store else str(path).partition("#")
        locator, settings, loaded, catalog = open_postgres_kb(
            url, name or "default", embedder, create, chunk_size, chunk_overlap)
        return KnowledgeBase(locator, settings, loaded, catalog)
    path = Path(path)
    settings_file = path / SETTINGS_FILE
    loaded = embedder if embedder is not None and not isinstance(embedder, str) else None
    spec = loaded.name if loaded is not None else embedder
    if settings_file.exists():
        try:
            settings = KBSettings(**json.loads(settings_file.read_text()))
        except (ValueError, TypeError) as exc:
            raise KnowledgeBaseError(f"{settings_file} is damaged ({exc}); rebuild the KB") from None
        check_settings(settings, str(path), spec, chunk_size, chunk_overlap)
        return KnowledgeBase(path, settings, loaded)
    if not create:
        raise KnowledgeBaseError(
            f"no knowledge base at {path}: run `ragortune ingest PATH --kb {path}` first")
    loaded = loaded or load_embedder(spec or "minilm")
    settings = new_settings(loaded, chunk_size, chunk_overlap)
    path.mkdir(parents=True, exist_ok=True)
    catalog = FolderCatalog(path, settings.dimension)
    catalog.save_manifest(Manifest(version=catalog.store().version()))
    catalog.save_settings(settings)  # last: a KB folder without kb.json is not a KB yet
    return KnowledgeBase(path, settings, loaded, catalog)
