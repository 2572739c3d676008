"""Long indexing shows honest progress and honest totals: the bar moves while chunks are
embedded (not only between documents), and `eval retrieval` reports the indexing that
really happened, also when sweep configurations share one KB."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ragortune.kb import open_kb
from ragortune.kb.sync import EMBED_SLICE, SyncProgress, sync


def _docs(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"note-{i:03d}.md").write_text(
            f"# Note {i}\n\nItem {i} is stored on shelf {i % 7} of aisle {i // 7}. "
            f"It weighs {i * 3 + 1} grams and was received on day {i}.\n")
    return folder


def test_embedding_advances_the_progress_with_a_total_known_up_front(tmp_path, embedder):
    docs = _docs(tmp_path / "docs", 3 * EMBED_SLICE)
    events: list[SyncProgress] = []
    report = sync(open_kb(tmp_path / "kb", embedder=embedder, create=True), [docs],
                  on_progress=events.append, batch_chunks=10_000)
    stages = [e.stage for e in events]
    assert stages.index("reading") < stages.index("chunking") < stages.index("embedding")
    embedding = [e for e in events if e.stage == "embedding"]
    # Several updates while one batch embeds (the old bar sat still until the batch ended).
    assert len(embedding) >= 4
    assert {e.total for e in embedding} == {report.embedding_tokens}
    assert {e.chunks_to_embed for e in embedding} == {report.chunks_embedded}
    assert [e.done for e in embedding] == sorted(e.done for e in embedding)
    assert (embedding[-1].done, embedding[-1].chunks_embedded) == (
        report.embedding_tokens, report.chunks_embedded)


def test_an_unchanged_corpus_reports_no_embedding_stage(tmp_path, embedder):
    docs = _docs(tmp_path / "docs", 5)
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    sync(kb, [docs])
    events: list[SyncProgress] = []
    sync(kb, [docs], on_progress=events.append)
    assert "embedding" not in {e.stage for e in events}


def _dataset(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = [{"_id": f"d{i}", "title": f"Fact {i}", "text": f"Shelf {i} holds {i * 11} boxes."}
              for i in range(12)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": f"How many boxes on shelf {i}?"}) + "\n"
        for i in range(3)))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(3)))
    return root


def test_eval_retrieval_reports_the_indexing_that_happened(tmp_path, monkeypatch, embedder):
    from ragortune.cli import app

    monkeypatch.chdir(tmp_path)
    data = _dataset(tmp_path / "facts")
    runner = CliRunner()

    def run(*args: str) -> dict:
        result = runner.invoke(app, ["eval", "retrieval", "--dataset", str(data), *args,
                                     "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    # Three modes share one KB; the reported (best) one is not the one that built it.
    first = run("--sweep", "mode=dense,bm25,hybrid")
    index = first["index"]
    assert index["chunks_embedded"] == first["kb"]["chunks"] == 12
    assert index["embedding_tokens"] > 0 and index["seconds"] > 0
    assert index["up_to_date"] is False
    evidence = json.loads(Path(first["files"]["evidence"]).read_text())
    stored = next(iter(evidence["runs"].values()))
    assert stored["usage"]["embedding_tokens_index"] == index["embedding_tokens"]
    # Run again: the KB is reused, and the report says so instead of passing off zeros.
    again = run()
    assert again["index"]["chunks_embedded"] == 0
    assert again["index"]["up_to_date"] is True
    assert again["index"]["documents"]["unchanged"] == 12
