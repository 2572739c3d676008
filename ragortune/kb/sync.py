"""Incremental sync of files into a knowledge base.

Unchanged documents (same content hash) cost nothing; a changed document is re-chunked
and only chunks whose embedded text (title, heading path, text; never the path) is new are
embedded, others reuse their stored vectors: a move costs nothing, and so does a rename
unless the title comes from the file name; documents gone from a synced folder lose their
chunks. Everything is chunked before anything is embedded, so progress (`SyncProgress`)
knows the embedding stage's total up front.

Crash safety: work is committed in batches, each with the manifest that describes it
(`KnowledgeBase.commit`): a run killed mid-batch loses that batch only. How depends on the
store: the folder KB writes Lance first and the manifest atomically last, and the next run
rolls the store back to the manifest's version; PostgreSQL commits both in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragortune.documents.chunk import Chunk, chunk_document
from ragortune.documents.loaders import Document, Skipped, discover, load_file, unreadable_roots
from ragortune.kb.knowledge_base import KnowledgeBase
from ragortune.kb.ray_engine import Prepared, RayEngine
from ragortune.store import SEARCH_TEXT

EMBED_SLICE = 64  # chunk texts per embedding call: the bar moves every second or so on a CPU


@dataclass(frozen=True)
class SyncProgress:
    """Where a sync stands. `stage` is "reading" (files), "chunking" (documents) or
    "embedding" (tokens of the chunks that need a vector): embedding is nearly all of the time,
    and counting its work in tokens makes the rate, hence the ETA, steady."""

    stage: str
    done: int
    total: int
    chunks_embedded: int = 0
    chunks_to_embed: int = 0


ProgressCallback = Callable[[SyncProgress], None]


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_deleted: int = 0
    embedding_tokens: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The documented `ingest --json` schema."""
        return {
            "documents": {"added": self.added, "updated": self.updated,
                          "unchanged": self.unchanged, "deleted": self.deleted,
                          "skipped": len(self.skipped)},
            "chunks_embedded": self.chunks_embedded, "chunks_reused": self.chunks_reused,
            "chunks_deleted": self.chunks_deleted, "embedding_tokens": self.embedding_tokens,
            "seconds": round(self.seconds, 3),
            "skipped_files": [asdict(s) for s in self.skipped],
        }


def _under(source: str, roots: list[Path]) -> bool:
    path = Path(source)
    return any(path == root or path.is_relative_to(root) for root in roots)


class _Batch:
    """Documents waiting to be written together, and the chunk ids they replace."""

    def __init__(self) -> None:
        self.documents: list[tuple[Document, list[Chunk]]] = []
        self.replaced: list[str] = []
        self.chunks = 0


def sync(kb: KnowledgeBase, paths: Iterable[str | Path], on_progress: ProgressCallback | None = None,
         batch_chunks: int = 1024, engine: RayEngine | None = None) -> SyncReport:
    """Bring the KB in line with the files under `paths`; returns what changed. With `engine`
    (kb/ray_engine.py), loading, chunking and embedding run on Ray; writing stays here."""
    started = time.perf_counter()
    roots = [Path(p).resolve() for p in paths]
    report = SyncReport()
    with kb.writing() as writer:  # the one writer, with a killed run's leftovers undone
        manifest = kb.load_manifest()
        documents = dict(manifest.documents)
        known_hashes = {h for doc in documents.values() for _, h in doc["chunks"]}
        files, skipped = discover(roots)
        report.skipped.extend(skipped)
        seen = {k for k, d in documents.items() if _under(d["source"], unreadable_roots(skipped))}
        loaded: list[Document] = []
        prepared = Prepared()
        if engine is not None:
            prepared = engine.prepare(files, {k: d["hash"] for k, d in documents.items()},
                                      known_hashes, kb.settings.embedder,
                                      kb.settings.chunk_size, kb.settings.chunk_overlap,
                                      on_progress and (lambda *p: on_progress(SyncProgress(*p))))
            loaded = prepared.documents
        failed = list(prepared.skipped)
        for done, file in enumerate(files if engine is None else [], start=1):
            try:
                loaded.extend(load_file(file))
            except (OSError, ValueError) as exc:
                failed.append(Skipped(str(file), str(exc) or type(exc).__name__))
            if on_progress:
                on_progress(SyncProgress("reading", done, len(files)))
        for skip in failed:  # keep what it had: it may be back next time
            report.skipped.append(skip)
            seen.update(k for k, d in documents.items() if d["source"] == skip.path)
        changed = _chunk_changed(kb, loaded, documents, prepared, engine is not None, report,
                                 seen, on_progress)
        embedding = _Embedding(kb, changed, known_hashes, prepared.vectors, on_progress)
        batch = _Batch()
        committed = False

        def commit(final: bool) -> None:
            _write_batch(kb, writer, batch, documents, known_hashes, report, prepared.vectors,
                         embedding)
            kb.commit(writer, documents, final)

        for doc, chunks in changed:
            old = documents.get(doc.key)
            if old is not None:
                batch.replaced.extend(cid for cid, _ in old["chunks"])
            batch.documents.append((doc, chunks))
            batch.chunks += len(chunks)
            if batch.chunks >= batch_chunks:
                commit(final=False)
                batch, committed = _Batch(), True
        for key in [k for k, d in documents.items() if k not in seen and _under(d["source"], roots)]:
            batch.replaced.extend(cid for cid, _ in documents.pop(key)["chunks"])
            report.deleted += 1
        if committed or batch.documents or batch.replaced:  # an unchanged corpus writes nothing
            commit(final=True)
    report.seconds = time.perf_counter() - started
    return report


def _chunk_changed(kb: KnowledgeBase, loaded: list[Document], documents: dict[str, dict],
                   prepared: Prepared, by_engine: bool, report: SyncReport, seen: set[str],
                   on_progress: ProgressCallback | None) -> list[tuple[Document, list[Chunk]]]:
    """The new and changed documents with their chunks, counted in `report`. Everything is
    chunked before anything is embedded, so the embedding stage knows its total up front."""
    changed: list[tuple[Document, list[Chunk]]] = []
    for done, doc in enumerate(loaded, start=1):
        seen.add(doc.key)
        old = documents.get(doc.key)
        if old is not None and old["hash"] == doc.content_hash:
            report.unchanged += 1
        else:
            if old is None:
                report.added += 1
            else:
                report.updated += 1
            chunks = prepared.chunks.get(doc.key) if by_engine else None
            if chunks is None:
                chunks = chunk_document(doc, kb.embedder.count_tokens,
                                        kb.settings.chunk_size, kb.settings.chunk_overlap)
            changed.append((doc, chunks))
        if on_progress:
            on_progress(SyncProgress("chunking", done, len(loaded)))
    return changed


class _Embedding:
    """The chunk texts this run must embed (new to the KB, not computed by an engine), their
    token counts, and the progress of embedding them across batches."""

    def __init__(self, kb: KnowledgeBase, changed: list[tuple[Document, list[Chunk]]],
                 known_hashes: set[str], computed: dict[str, np.ndarray],
                 on_progress: ProgressCallback | None) -> None:
        self.kb, self.on_progress = kb, on_progress
        pending = {c.content_hash: c.embed_text for _, chunks in changed for c in chunks
                   if c.content_hash not in known_hashes and c.content_hash not in computed}
        # An unchanged corpus loads no model.
        counts = kb.embedder.count_tokens(list(pending.values())) if pending else []
        self.tokens = dict(zip(pending, counts))
        self.total_tokens, self.total_chunks = sum(self.tokens.values()), len(pending)
        self.done_tokens = self.done_chunks = 0
        self._report()

    def embed(self, missing: dict[str, str]) -> tuple[dict[str, np.ndarray], int]:
        """Vectors of `missing` (hash -> text) and their tokens, in slices longest first so
        each slice pads little and the bar moves while the model runs."""
        unknown = [h for h in missing if h not in self.tokens]  # e.g. a vector the store lost
        self.tokens.update(zip(unknown, self.kb.embedder.count_tokens(
            [missing[h] for h in unknown])))
        order = sorted(missing, key=lambda h: -self.tokens[h])
        size = max(EMBED_SLICE, int(getattr(self.kb.embedder, "batch_size", 0) or 0))
        vectors: dict[str, np.ndarray] = {}
        for start in range(0, len(order), size):
            part = order[start:start + size]
            vectors.update(zip(part, self.kb.embedder.embed([missing[h] for h in part])))
            self.done_chunks += len(part)
            self.done_tokens += sum(self.tokens[h] for h in part)
            self._report()
        return vectors, sum(self.tokens[h] for h in order)

    def _report(self) -> None:
        if self.on_progress and self.total_chunks:
            self.on_progress(SyncProgress("embedding", min(self.done_tokens, self.total_tokens),
                                          self.total_tokens, self.done_chunks, self.total_chunks))


def _write_batch(kb: KnowledgeBase, writer: Any, batch: _Batch, documents: dict[str, dict],
                 known_hashes: set[str], report: SyncReport,
                 computed: dict[str, np.ndarray], embedding: _Embedding) -> None:
    """Embed what is new (unless an engine already did: `computed`), write the rows, delete
    what they replace, update `documents`."""
    chunks = [chunk for _, doc_chunks in batch.documents for chunk in doc_chunks]
    hashes = [chunk.content_hash for chunk in chunks]
    reusable = [h for h in set(hashes) if h in known_hashes]
    vectors = writer.vectors_by_hash(reusable) if reusable else {}
    fresh = {h: computed[h] for h in hashes if h in computed and h not in vectors}
    if fresh:
        vectors.update(fresh)
        report.chunks_embedded += len(fresh)
        report.embedding_tokens += sum(kb.embedder.count_tokens(
            list({h: c.embed_text for h, c in zip(hashes, chunks) if h in fresh}.values())))
    missing = {h: chunk.embed_text for h, chunk in zip(hashes, chunks) if h not in vectors}
    if missing:
        embedded, tokens = embedding.embed(missing)
        vectors.update(embedded)
        report.chunks_embedded += len(missing)
        report.embedding_tokens += tokens
    report.chunks_reused += len(chunks) - len(missing) - len(fresh)
    writer.delete(batch.replaced)  # first: an unchanged chunk keeps its id and is re-added
    report.chunks_deleted += len(set(batch.replaced) - {c.chunk_id for c in chunks})
    if chunks:
        rows = [{"chunk_id": c.chunk_id, "doc_key": c.doc_key, "doc_id": c.doc_id,
                 "source": c.source, "title": c.title, "heading": c.heading,
                 "position": c.position, "text": c.text, "content_hash": h,
                 SEARCH_TEXT: c.embed_text} for c, h in zip(chunks, hashes)]
        writer.add(rows, np.stack([vectors[h] for h in hashes]))
    for doc, doc_chunks in batch.documents:
        documents[doc.key] = {"hash": doc.content_hash, "source": doc.source,
                              "doc_id": doc.doc_id, "title": doc.title,
                              "chunks": [[c.chunk_id, c.content_hash] for c in doc_chunks]}
    known_hashes.update(hashes)
