"""Distributed ingest on Ray: loading, chunking and embedding run as Ray Data stages; the
driver writes and commits through the same sync as the local path (kb/sync.py), so the
manifest, the incremental skip and crash safety are the local path's.

Stages: file paths (from items) -> `map_batches(LoadAndChunk)` (an actor pool: each actor
holds the embedder's tokenizer to cut chunks, and skips documents whose hash the manifest
already has) -> `map_batches(Embed)` (an actor pool of `workers` embedders, one GPU each when
the cluster has GPUs; chunks whose text the KB already holds are not embedded). Blocks of
BLOCK_BYTES let every embedder work even when one file (a JSONL corpus) holds all the
documents. The driver reports progress as output arrives: stage RAY_STAGE, files done of
files total, chunks embedded so far (their total is unknown until every file is chunked).
Needs the `scale` extra (`pip install 'ragortune[scale]'`), and ragortune installed on every
node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragortune.documents.chunk import Chunk, chunk_document
from ragortune.documents.loaders import Document, Skipped, load_file
from ragortune.errors import ConfigError

DOC, CHUNK, SKIPPED = "doc", "chunk", "skipped"
RAY_STAGE = "on Ray"  # loading, chunking and embedding at once, counted in files
EMBED_BLOCK = 128  # chunk rows per embedding call
BLOCK_BYTES = 256 * 1024  # Ray Data block size: about 100-200 SciFact chunk rows
# stage, files done, files total, chunks embedded: the fields of kb.sync.SyncProgress
EngineProgress = Callable[[str, int, int, int], None]
FIELDS = ("kind", "path", "key", "doc_id", "source", "title", "text", "format", "heading",
          "position", "reason")


@dataclass
class Prepared:
    """What the stages computed, in file order: every loaded document, the chunks of the new
    and changed ones, the vectors of chunk texts the KB lacked, and the files skipped."""

    documents: list[Document] = field(default_factory=list)
    chunks: dict[str, list[Chunk]] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class RayEngine:
    """`address`: 'local' starts Ray in this process; 'auto' or 'ray://host:10001' joins a
    cluster. `workers`: embedder actors (and as many load+chunk actors)."""

    address: str = "local"
    workers: int = 2
    cpus_per_worker: float = 1.0

    def prepare(self, files: Sequence[Path], known_documents: dict[str, str],
                known_chunks: set[str], embedder: str, chunk_size: int, chunk_overlap: int,
                on_progress: EngineProgress | None = None) -> Prepared:
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=None if self.address == "local" else self.address,
                     include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # manifest and commits in file order
        context.enable_progress_bars = False
        # Small blocks, so one big file's chunks reach every embedder (a repartition would be
        # a task wanting a whole CPU, which fractional actors can leave nowhere: a deadlock).
        context.target_max_block_size = BLOCK_BYTES
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else None
        paths = ray.data.from_items([{"path": str(file)} for file in files],
                                    override_num_blocks=max(1, min(len(files), 4 * self.workers)))
        rows = paths.map_batches(
            LoadAndChunk, batch_size=16, compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=self.cpus_per_worker,
            fn_constructor_kwargs={"embedder": embedder, "chunk_size": chunk_size,
                                   "chunk_overlap": chunk_overlap, "known": known_documents})
        embedded = rows.map_batches(
            Embed, batch_size=EMBED_BLOCK, compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=self.cpus_per_worker, num_gpus=gpus,
            fn_constructor_kwargs={"embedder": embedder, "known": known_chunks})
        prepared = Prepared()
        paths_seen: set[str] = set()
        for batch in embedded.iter_batches(batch_format="numpy", batch_size=EMBED_BLOCK):
            _collect(batch, prepared)
            if on_progress:
                paths_seen.update(str(path) for path in batch["path"])
                # in file order, so every file but the last one seen is complete
                on_progress(RAY_STAGE, max(0, len(paths_seen) - 1), len(files),
                            len(prepared.vectors))
        if on_progress:
            on_progress(RAY_STAGE, len(files), len(files), len(prepared.vectors))
        return prepared


class LoadAndChunk:
    """Ray actor: files -> one row per document, one per chunk of a new or changed document,
    one per file that could not be read."""

    def __init__(self, embedder: str, chunk_size: int, chunk_overlap: int,
                 known: dict[str, str]):
        from ragortune.embed import load_embedder

        self.count = load_embedder(embedder).count_tokens
        self.size, self.overlap, self.known = chunk_size, chunk_overlap, known

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: list[dict[str, Any]] = []
        for path in batch["path"]:
            try:
                documents = load_file(Path(str(path)))
            except (OSError, ValueError) as exc:
                rows.append(_row(SKIPPED, path=str(path), reason=str(exc) or type(exc).__name__))
                continue
            for doc in documents:
                rows.append(_row(DOC, path=str(path), key=doc.key, doc_id=doc.doc_id,
                                 source=doc.source, title=doc.title, text=doc.text,
                                 format=doc.format))
                if self.known.get(doc.key) == doc.content_hash:
                    continue
                for chunk in chunk_document(doc, self.count, self.size, self.overlap):
                    rows.append(_row(CHUNK, path=str(path), key=chunk.doc_key,
                                     doc_id=chunk.doc_id, source=chunk.source, title=chunk.title,
                                     text=chunk.text, heading=chunk.heading,
                                     position=chunk.position))
        return {name: np.array([row[name] for row in rows], dtype=object if name != "position"
                               else np.int64) for name in FIELDS}


class Embed:
    """Ray actor: adds `vector` (zeros where nothing was embedded) and `embedded`."""

    def __init__(self, embedder: str, known: set[str]):
        from ragortune.embed import load_embedder

        self.embedder = load_embedder(embedder)
        self.known = known

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        chunks = [(i, _chunk(batch, i)) for i, kind in enumerate(batch["kind"]) if kind == CHUNK]
        todo: dict[str, list[int]] = {}
        for i, chunk in chunks:
            if chunk.content_hash not in self.known:
                todo.setdefault(chunk.embed_text, []).append(i)
        vectors = np.zeros((len(batch["kind"]), self.embedder.dimension), dtype=np.float32)
        embedded = np.zeros(len(batch["kind"]), dtype=bool)
        if todo:
            for rows, vector in zip(todo.values(), self.embedder.embed(list(todo))):
                vectors[rows] = vector
                embedded[rows] = True
        return {**batch, "vector": vectors, "embedded": embedded}


def _row(kind: str, **values: Any) -> dict[str, Any]:
    return {**{name: "" for name in FIELDS}, "position": 0, **values, "kind": kind}


def _chunk(batch: dict[str, np.ndarray], i: int) -> Chunk:
    return Chunk(doc_key=str(batch["key"][i]), doc_id=str(batch["doc_id"][i]),
                 source=str(batch["source"][i]), title=str(batch["title"][i]),
                 heading=str(batch["heading"][i]), position=int(batch["position"][i]),
                 text=str(batch["text"][i]))


def _collect(batch: dict[str, np.ndarray], prepared: Prepared) -> None:
    for i, kind in enumerate(batch["kind"]):
        if kind == SKIPPED:
            prepared.skipped.append(Skipped(str(batch["path"][i]), str(batch["reason"][i])))
        elif kind == DOC:
            prepared.documents.append(Document(
                key=str(batch["key"][i]), doc_id=str(batch["doc_id"][i]),
                source=str(batch["source"][i]), title=str(batch["title"][i]),
                text=str(batch["text"][i]), format=str(batch["format"][i])))
        else:
            chunk = _chunk(batch, i)
            prepared.chunks.setdefault(chunk.doc_key, []).append(chunk)
            if batch["embedded"][i]:
                prepared.vectors[chunk.content_hash] = np.asarray(batch["vector"][i],
                                                                  dtype=np.float32)


def _ray() -> Any:
    try:
        import ray
        import ray.data  # Ray Data ships in ray[data]
    except ImportError:
        raise ConfigError("--ray needs the scale extra: pip install 'ragortune[scale]'") from None
    return ray
