"""A knowledge base on disk: the store's files, a manifest, and the settings it was built with.

Layout of the KB folder:
  kb.json        how it was built (embedder, dimension, chunk size/overlap, threshold)
  manifest.json  the last consistent state: store version, and per document its
                 content hash and chunk ids/hashes. Written atomically, last.
  store/         the LanceDB table
Readers only ever see the store version the manifest names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from ragortune import __version__
from ragortune.documents.chunk import check_sizes
from ragortune.embed import Embedder, load_embedder
from ragortune.errors import KnowledgeBaseError
from ragortune.io import utc_now, write_json_atomic
from ragortune.store import StoredChunk
from ragortune.store.lance import LanceStore

SETTINGS_FILE = "kb.json"
MANIFEST_FILE = "manifest.json"


class KBSettings(BaseModel):
    embedder: str
    dimension: int
    chunk_size: int = 240
    chunk_overlap: int = 30
    min_score: float | None = None
    created_at: str = ""
    ragortune_version: str = __version__


@dataclass
class Manifest:
    """What the KB holds at its last consistent state."""

    version: int = 0
    synced_at: str | None = None
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def chunk_count(self) -> int:
        return sum(len(doc["chunks"]) for doc in self.documents.values())


class KnowledgeBase:
    def __init__(self, path: Path, settings: KBSettings, embedder: Embedder | None = None):
        self.path = path
        self.settings = settings
        self._embedder = embedder
        self._reader: LanceStore | None = None
        self._reader_version: int | None = None
        self._manifest_stat: tuple[int, int, int] | None = None
        self.manifest = self.load_manifest()

    @property
    def embedder(self) -> Embedder:
        """Loaded on first use: `status` and argument errors should not wait for a model."""
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedder)
        return self._embedder

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
        self.manifest = manifest

    def save_settings(self) -> None:
        write_json_atomic(self.path / SETTINGS_FILE, self.settings.model_dump())

    def writer(self) -> LanceStore:
        return LanceStore(self.path / "store", self.settings.dimension)

    def reader(self) -> LanceStore:
        """The store pinned at the manifest's version; re-pinned when a sync has committed.
        The manifest is re-read only when its file changed, so searches stay cheap."""
        stat = (self.path / MANIFEST_FILE).stat()
        if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._manifest_stat:
            self.manifest = self.load_manifest()
            self._manifest_stat = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if self._reader is None or self._reader_version != self.manifest.version:
            self._reader = LanceStore(self.path / "store", self.settings.dimension,
                                      read_version=self.manifest.version or None)
            self._reader_version = self.manifest.version
        return self._reader

    def chunks(self) -> list[StoredChunk]:
        """Every chunk the KB holds at its last consistent state (score 0)."""
        return self.reader().all_chunks()

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed([query])[0]

    def status(self) -> dict[str, Any]:
        store = self.path / "store"
        size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) if store.exists() else 0
        return {"kb": str(self.path), "documents": len(self.manifest.documents),
                "chunks": self.manifest.chunk_count, "embedder": self.settings.embedder,
                "dimension": self.settings.dimension, "chunk_size": self.settings.chunk_size,
                "chunk_overlap": self.settings.chunk_overlap, "min_score": self.settings.min_score,
                "size_bytes": size, "last_sync": self.manifest.synced_at,
                "store_version": self.manifest.version}


def open_kb(path: str | Path = ".ragortune", embedder: Embedder | str | None = None,
            create: bool = False, chunk_size: int | None = None,
            chunk_overlap: int | None = None) -> KnowledgeBase:
    """Open the KB at `path`; with `create`, make it (built with `embedder`) if absent.

    Opening with a different embedder or chunking than the KB was built with is an error,
    since vectors from two models, or chunks cut two ways, cannot be mixed."""
    path = Path(path)
    settings_file = path / SETTINGS_FILE
    loaded = embedder if embedder is not None and not isinstance(embedder, str) else None
    spec = loaded.name if loaded is not None else embedder
    if settings_file.exists():
        try:
            settings = KBSettings(**json.loads(settings_file.read_text()))
        except (ValueError, TypeError) as exc:
            raise KnowledgeBaseError(f"{settings_file} is damaged ({exc}); rebuild the KB") from None
        if spec is not None and spec != settings.embedder:
            raise KnowledgeBaseError(
                f"knowledge base {path} was built with embedder '{settings.embedder}', not "
                f"'{spec}': use --embedder {settings.embedder}, or a new --kb folder")
        for name, wanted in (("chunk_size", chunk_size), ("chunk_overlap", chunk_overlap)):
            if wanted is not None and wanted != getattr(settings, name):
                raise KnowledgeBaseError(
                    f"knowledge base {path} was built with {name} {getattr(settings, name)}, "
                    f"not {wanted}: drop the flag, or use a new --kb folder")
        return KnowledgeBase(path, settings, loaded)
    if not create:
        raise KnowledgeBaseError(
            f"no knowledge base at {path}: run `ragortune ingest PATH --kb {path}` first")
    loaded = loaded or load_embedder(spec or "minilm")
    sizes = {name: value for name, value in (("chunk_size", chunk_size),
                                             ("chunk_overlap", chunk_overlap)) if value is not None}
    settings = KBSettings(embedder=loaded.name, dimension=loaded.dimension, created_at=utc_now(),
                          **sizes)
    check_sizes(settings.chunk_size, settings.chunk_overlap, loaded.max_tokens, loaded.name)
    path.mkdir(parents=True, exist_ok=True)
    kb = KnowledgeBase(path, settings, loaded)
    kb.save_manifest(Manifest(version=kb.writer().version()))
    kb.save_settings()  # last: a KB folder without kb.json is not a KB yet
    return kb
