"""Sync behaviour specific to the folder KB; what every store must do is in tests/contracts."""

from pathlib import Path

import lancedb

from ragortune.kb import open_kb
from ragortune.kb.sync import sync

FACTS = {
    "leave.md": "# Leave\n\n## Annual\n\nEmployees get 25 days of paid leave per year.\n\n"
                "## Sick\n\nSick leave needs a doctor's note after 3 days.\n",
    "pricing.md": "# Pricing\n\nThe Pro plan costs $49 per month. The Team plan costs $99 per month.\n",
    "support.txt": "Support is open from 9:00 to 17:00 CET on working days.\n",
}


def make_docs(folder: Path, files: dict[str, str] = FACTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def stored_chunk_ids(kb) -> set[str]:
    """Chunk ids in the store at the version the manifest names (what readers see)."""
    table = lancedb.connect(str(kb.path / "store")).open_table("chunks")
    table.checkout(kb.load_manifest().version)
    return set(table.to_arrow().column("chunk_id").to_pylist())


def manifest_chunk_ids(kb) -> set[str]:
    return {cid for doc in kb.load_manifest().documents.values() for cid, _ in doc["chunks"]}


def test_first_sync_adds_everything_and_a_second_costs_nothing(tmp_path, embedder):
    docs = make_docs(tmp_path / "docs")
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    first = sync(kb, [docs])
    assert (first.added, first.updated, first.unchanged, first.deleted) == (3, 0, 0, 0)
    assert first.chunks_embedded == len(manifest_chunk_ids(kb)) == 4
    assert first.embedding_tokens > 0
    again = sync(kb, [docs])
    assert (again.added, again.unchanged, again.chunks_embedded, again.embedding_tokens) == (0, 3, 0, 0)
    assert stored_chunk_ids(kb) == manifest_chunk_ids(kb)


def test_syncing_one_folder_does_not_delete_another(tmp_path, embedder):
    first = make_docs(tmp_path / "a", {"a.md": "# A\n\nAlpha facts."})
    second = make_docs(tmp_path / "b", {"b.md": "# B\n\nBeta facts."})
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    sync(kb, [first])
    report = sync(kb, [second])
    assert (report.added, report.deleted) == (1, 0)
    assert len(kb.load_manifest().documents) == 2


def test_a_file_that_becomes_unreadable_keeps_its_chunks_and_is_reported(tmp_path, embedder):
    docs = make_docs(tmp_path / "docs")
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    sync(kb, [docs])
    (docs / "support.txt").write_bytes(b"\x00\x00binary")
    report = sync(kb, [docs])
    assert report.deleted == 0 and [Path(s.path).name for s in report.skipped] == ["support.txt"]
    assert len(kb.load_manifest().documents) == 3
