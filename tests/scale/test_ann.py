"""The embedded store's ANN index: built past a size threshold (set small here through
RAGORTUNE_ANN_MIN_ROWS) after the data commit, agreeing with the exact scan it replaces, and
serving rows written or deleted since its build."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragortune.kb import open_kb
from ragortune.kb.sync import sync
from ragortune.retrieve import search
from ragortune.store.lance import ANN_ENV, LanceStore

QUERIES = ("which shelf holds item 5 of note 3", "note 11 filing", "item 20 of note 7",
           "where is fact 2.14 filed")


def write_notes(folder: Path, first: int, count: int) -> Path:
    folder.mkdir(exist_ok=True)
    for i in range(first, first + count):
        (folder / f"note-{i:03}.md").write_text(
            f"# Note {i}\n\n" + " ".join(f"Fact {i}.{j}: item {j} of note {i} is filed under "
                                         f"shelf {i * 7 + j}." for j in range(24)))
    return folder


@pytest.fixture
def small_threshold(monkeypatch) -> int:
    monkeypatch.setenv(ANN_ENV, "100")
    return 100


def exact_store(kb, monkeypatch, version: int) -> LanceStore:
    """The same pinned version, searched by the exact scan (threshold out of reach)."""
    monkeypatch.setenv(ANN_ENV, str(10**9))
    store = LanceStore(Path(kb.path) / "store", kb.settings.dimension, read_version=version)
    assert not store.uses_index
    return store


def test_past_the_threshold_dense_search_uses_the_index_and_agrees_with_the_exact_scan(
        embedder, tmp_path, small_threshold, monkeypatch):
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True, chunk_size=48, chunk_overlap=8)
    notes = write_notes(tmp_path / "notes", 0, 6)
    sync(kb, [notes])
    assert kb.manifest.chunk_count < small_threshold and not kb.reader().uses_index
    sync(kb, [write_notes(notes, 6, 14)])
    reader = kb.reader()
    assert kb.manifest.chunk_count >= small_threshold and reader.uses_index
    indexed = {q: search(kb, q, k=5, mode="dense") for q in QUERIES}
    exact = exact_store(kb, monkeypatch, kb.manifest.version)
    for query, hits in indexed.items():
        truth = exact.dense_search(kb.embed_query(query), 5)
        assert [h.chunk_id for h in hits] == [c.chunk_id for c in truth]
        assert [h.similarity for h in hits] == pytest.approx([c.score for c in truth], abs=1e-6)
    assert len(list((Path(kb.path) / "store" / "ann").glob("*.faiss"))) == 1


def test_rows_added_or_deleted_after_the_build_are_found_or_gone_without_a_rebuild(
        embedder, tmp_path, small_threshold, monkeypatch):
    """A small sync does not rebuild (under a tenth of the rows changed): the new chunks are
    scanned exactly beside the index and the deleted ones never come back."""
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True, chunk_size=48, chunk_overlap=8)
    notes = write_notes(tmp_path / "notes", 0, 60)
    sync(kb, [notes])
    gone = {c.chunk_id for c in kb.reader().all_chunks() if c.source.endswith("note-003.md")}
    (notes / "note-003.md").unlink()
    (notes / "extra.md").write_text("# Lighthouse\n\nThe lighthouse keeper logs the fog horn "
                                    "tests every Tuesday at dawn.")
    sync(kb, [notes])
    assert len(list((Path(kb.path) / "store" / "ann").glob("*.faiss"))) == 1  # not rebuilt
    reader = kb.reader()
    assert reader.uses_index
    hits = search(kb, "when does the keeper test the fog horn", k=3, mode="dense")
    assert hits[0].source.endswith("extra.md")
    for query in ("item 5 of note 3", "note 3 shelf 26", *QUERIES):
        found = search(kb, query, k=10, mode="dense")
        assert not gone & {h.chunk_id for h in found}
        truth = exact_store(kb, monkeypatch, kb.manifest.version).dense_search(
            kb.embed_query(query), 10)
        assert [h.chunk_id for h in found] == [c.chunk_id for c in truth]
        monkeypatch.setenv(ANN_ENV, "100")


def test_a_later_sync_is_found_through_the_index_and_a_hybrid_search_still_works(
        embedder, tmp_path, small_threshold):
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True, chunk_size=48, chunk_overlap=8)
    notes = write_notes(tmp_path / "notes", 0, 20)
    sync(kb, [notes])
    (notes / "extra.md").write_text("# Lighthouse\n\nThe lighthouse keeper logs the fog horn "
                                    "tests every Tuesday at dawn.")
    sync(kb, [notes])
    assert kb.reader().uses_index
    hits = search(kb, "when does the keeper test the fog horn", k=3, mode="dense")
    assert hits[0].source.endswith("extra.md")
    hybrid = search(kb, "fog horn lighthouse", k=3, mode="hybrid")
    assert hybrid[0].source.endswith("extra.md")
