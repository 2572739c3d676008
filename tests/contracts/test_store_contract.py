"""One suite, every store: what a user relies on from a KB whether it lives in a LanceDB folder
or in PostgreSQL. Each test runs once per store (`kb_locator` in conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from ragortune.errors import KnowledgeBaseError
from ragortune.kb import open_kb
from ragortune.kb.sync import sync
from ragortune.retrieve import search

REPO = Path(__file__).resolve().parents[2]
FACTS = {
    "leave.md": "# Leave\n\n## Annual\n\nEmployees get 25 days of paid leave per year.\n\n"
                "## Sick\n\nSick leave needs a doctor's note after 3 days.\n",
    "pricing.md": "# Pricing\n\nThe Pro plan costs $49 per month. The Team plan costs $99 per month.\n",
    "support.txt": "Support is open from 9:00 to 17:00 CET on working days.\n",
    "routers.txt": "Configuring routers: set the uplink port before enabling the firewall.\n",
}


def make_docs(folder: Path, files: dict[str, str] = FACTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def make_notes(folder: Path, count: int) -> Path:
    """Documents of several chunks each, so a half-written document would show."""
    folder.mkdir()
    for i in range(count):
        (folder / f"note-{i:03}.md").write_text(
            f"# Note {i}\n\n" + " ".join(f"Fact {i}.{j}: item {j} of note {i} is filed under "
                                         f"shelf {i * 7 + j}." for j in range(24)))
    return folder


def stored_ids(kb) -> set[str]:
    """What readers see."""
    return {chunk.chunk_id for chunk in kb.reader().all_chunks()}


def manifest_ids(kb) -> set[str]:
    return {cid for doc in kb.load_manifest().documents.values() for cid, _ in doc["chunks"]}


@pytest.fixture
def kb(kb_locator, embedder, tmp_path):
    base = open_kb(kb_locator, embedder=embedder, create=True)
    sync(base, [make_docs(tmp_path / "docs")])
    return base


def test_unchanged_documents_cost_nothing_and_an_edit_replaces_only_its_chunk(kb, tmp_path):
    docs = tmp_path / "docs"
    again = sync(kb, [docs])
    assert (again.added, again.unchanged, again.chunks_embedded) == (0, 4, 0)
    (docs / "leave.md").write_text(FACTS["leave.md"].replace("25 days", "28 days"))
    report = sync(kb, [docs])
    assert (report.updated, report.chunks_embedded, report.chunks_reused) == (1, 1, 1)
    assert "28 days" in search(kb, "how many days of paid leave", k=1, mode="dense")[0].text
    assert not any("25 days" in h.text for h in search(kb, "paid leave days", k=10, mode="bm25"))
    assert stored_ids(kb) == manifest_ids(kb)


def test_deleted_documents_lose_their_chunks_and_a_rename_reuses_vectors(kb, tmp_path):
    docs = tmp_path / "docs"
    (docs / "support.txt").unlink()
    (docs / "pricing.md").rename(docs / "plans.md")
    report = sync(kb, [docs])
    assert (report.added, report.deleted, report.chunks_embedded, report.chunks_reused) == (1, 2, 0, 1)
    sources = {Path(h.source).name for h in search(kb, "support hours pricing plan", k=10)}
    assert sources == {"plans.md", "leave.md", "routers.txt"}
    assert stored_ids(kb) == manifest_ids(kb)


def test_reopening_finds_the_same_kb_and_refuses_another_embedder(kb, embedder):
    again = open_kb(kb.path, embedder=embedder)
    assert stored_ids(again) == stored_ids(kb) and again.settings == kb.settings
    with pytest.raises(KnowledgeBaseError, match="built with embedder 'minilm'"):
        open_kb(kb.path, embedder="openai:text-embedding-3-small")
    with pytest.raises(KnowledgeBaseError, match="chunk_size 240"):
        open_kb(kb.path, chunk_size=128)


def test_bm25_matches_stemmed_words_and_ignores_stop_words(kb):
    assert search(kb, "configured router", k=2, mode="bm25")[0].source.endswith("routers.txt")
    assert search(kb, "the of and", k=3, mode="bm25") == []


def test_dense_finds_a_paraphrase_with_no_shared_word(kb):
    hits = search(kb, "How much is the subscription?", k=2, mode="dense")
    assert hits[0].source.endswith("pricing.md")
    assert hits[0].score == pytest.approx(hits[0].similarity) and hits[0].score > hits[1].score


def test_hybrid_ranks_the_answer_first_with_scores_in_0_1(kb):
    hits = search(kb, "how many days of paid leave", k=4, mode="hybrid")
    assert hits[0].source.endswith("leave.md")
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_the_gate_drops_weak_hits_in_every_mode(kb):
    for mode in ("dense", "bm25", "hybrid"):
        assert search(kb, "quantum chromodynamics lattice gauge", k=3, mode=mode,
                      min_score=0.5) == []
        strong = search(kb, "Pro plan price per month", k=3, mode=mode, min_score=0.3)
        assert strong and all(hit.similarity >= 0.3 for hit in strong)


def test_both_stores_hold_the_same_chunks_and_find_the_same_dense_hits(
        embedder, tmp_path, postgres_url):
    """Same chunks, same vectors: dense search agrees (lexical ranking differs: ts_rank)."""
    docs = make_docs(tmp_path / "docs")
    first = open_kb(tmp_path / "lance-kb", embedder=embedder, create=True)
    other = open_kb(f"{postgres_url}#twin-{tmp_path.name}", embedder=embedder, create=True)
    sync(first, [docs])
    sync(other, [docs])
    assert stored_ids(first) == stored_ids(other)
    for query in ("paid leave", "firewall port", "monthly price"):
        dense = [search(base, query, k=4, mode="dense") for base in (first, other)]
        assert [h.chunk_id for h in dense[0]] == [h.chunk_id for h in dense[1]]
        assert [h.similarity for h in dense[0]] == pytest.approx([h.similarity for h in dense[1]],
                                                                 abs=1e-5)


def test_a_second_writer_fails_at_once_with_a_clear_message(kb, tmp_path):
    with kb.writing(), pytest.raises(KnowledgeBaseError, match="another ingest is writing"):
        sync(open_kb(kb.path), [tmp_path / "docs"])
    assert sync(kb, [tmp_path / "docs"]).unchanged == 4  # the lock is released


def test_readers_during_a_sync_see_only_whole_commits(kb_locator, embedder, tmp_path):
    notes = make_notes(tmp_path / "notes", 24)
    writer_kb = open_kb(kb_locator, embedder=embedder, create=True)
    reader_kb = open_kb(kb_locator, embedder=embedder)
    failures: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(failures, sync, writer_kb, [notes],
                                                  batch_chunks=8))
    thread.start()
    seen = []
    while thread.is_alive():
        chunks = reader_kb.reader().all_chunks()
        hits = search(reader_kb, "shelf of note 3", k=5, mode="hybrid")
        assert {h.chunk_id for h in hits} <= {c.chunk_id for c in reader_kb.reader().all_chunks()}
        seen.append(Counter(chunk.doc_key for chunk in chunks))
    thread.join()
    assert not failures
    whole = Counter(chunk.doc_key for chunk in reader_kb.reader().all_chunks())
    assert len(whole) == 24 and len(seen) > 1
    for counts in seen:  # never half a document: each visible document has all its chunks
        assert all(count == whole[key] for key, count in counts.items())


def _run(failures: list[BaseException], function, *args, **kwargs) -> None:
    try:
        function(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - reported by the test's assertion
        failures.append(exc)


def test_a_killed_ingest_leaves_the_last_commit_and_the_next_run_completes(
        kb_locator, embedder, tmp_path):
    notes = make_notes(tmp_path / "notes", 80)
    open_kb(kb_locator, embedder=embedder, create=True)
    kb = open_kb(kb_locator, embedder=embedder)
    start = kb.load_manifest().version
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from ragortune.cli import main; main()", "ingest", str(notes),
         "--kb", kb_locator, "--batch-size", "16", "--json"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        if kb.load_manifest().version > start + 3:
            break  # a few batches committed: kill it in the middle of the next one
        time.sleep(0.05)
    assert process.poll() is None, "ingest finished before it could be killed"
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()

    kb = open_kb(kb_locator, embedder=embedder)
    partial = kb.load_manifest().documents
    assert 0 < len(partial) < 80
    assert stored_ids(kb) == manifest_ids(kb)  # readers see the last commit, nothing after it
    report = sync(kb, [notes])
    assert report.added == 80 - len(partial) and report.unchanged == len(partial)
    assert stored_ids(kb) == manifest_ids(kb) and len(kb.load_manifest().documents) == 80
