import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lancedb
import pytest

from ragortune.errors import KnowledgeBaseError
from ragortune.kb.sync import sync
from ragortune.kb import open_kb
from ragortune.retrieve import search

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


def test_an_edit_reembeds_only_the_changed_chunk(tmp_path, embedder):
    docs = make_docs(tmp_path / "docs")
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    sync(kb, [docs])
    (docs / "leave.md").write_text(FACTS["leave.md"].replace("25 days", "28 days"))
    report = sync(kb, [docs])
    assert (report.updated, report.unchanged, report.chunks_embedded, report.chunks_reused) == (1, 2, 1, 1)
    hits = search(kb, "how many days of paid leave", k=1, mode="dense")
    assert "28 days" in hits[0].text
    assert stored_chunk_ids(kb) == manifest_chunk_ids(kb)
    assert not any("25 days" in h.text for h in search(kb, "paid leave days", k=10, mode="bm25"))


def test_deleted_and_renamed_documents(tmp_path, embedder):
    docs = make_docs(tmp_path / "docs")
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    sync(kb, [docs])
    (docs / "support.txt").unlink()
    (docs / "pricing.md").rename(docs / "plans.md")
    report = sync(kb, [docs])
    assert (report.added, report.deleted, report.unchanged) == (1, 2, 1)
    assert report.chunks_embedded == 0 and report.chunks_reused == 1  # the rename reuses vectors
    sources = {Path(h.source).name for h in search(kb, "support hours pricing plan", k=10)}
    assert sources == {"plans.md", "leave.md"}
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


def test_opening_with_another_embedder_or_chunking_is_a_clear_error(tmp_path, embedder):
    open_kb(tmp_path / "kb", embedder=embedder, create=True)
    with pytest.raises(KnowledgeBaseError, match="built with embedder 'minilm'"):
        open_kb(tmp_path / "kb", embedder="openai:text-embedding-3-small")
    with pytest.raises(KnowledgeBaseError, match="chunk_size 240"):
        open_kb(tmp_path / "kb", chunk_size=128)
    with pytest.raises(KnowledgeBaseError, match="no knowledge base"):
        open_kb(tmp_path / "elsewhere")


def test_a_killed_ingest_leaves_a_consistent_kb_and_the_next_run_completes(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(150):
        (docs / f"note-{i:03}.md").write_text(
            f"# Note {i}\n\n" + " ".join(f"Fact {i}.{j}: item {j} of note {i} is filed under "
                                         f"shelf {i * 7 + j}." for j in range(12)))
    kb_path = tmp_path / "kb"
    open_kb(kb_path, embedder=embedder, create=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-c", "from ragortune.cli import main; main()", "ingest", str(docs),
         "--kb", str(kb_path), "--batch-size", "16", "--json"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = kb_path / "manifest.json"
    start_version = json.loads(manifest.read_text())["version"]
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if json.loads(manifest.read_text())["version"] > start_version + 4:
            break  # a few batches committed: kill it in the middle of the next one
        time.sleep(0.05)
    assert process.poll() is None, "ingest finished before it could be killed"
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()

    kb = open_kb(kb_path, embedder=embedder)
    partial = kb.load_manifest().documents
    assert 0 < len(partial) < 150
    assert stored_chunk_ids(kb) == manifest_chunk_ids(kb)  # readers see the last commit
    assert search(kb, "shelf", k=3, mode="bm25") or search(kb, "shelf", k=3, mode="dense")

    report = sync(kb, [docs])
    assert report.added == 150 - len(partial) and report.unchanged == len(partial)
    assert len(kb.load_manifest().documents) == 150
    assert stored_chunk_ids(kb) == manifest_chunk_ids(kb)
    assert report.chunks_embedded < kb.load_manifest().chunk_count  # resumed, not redone
