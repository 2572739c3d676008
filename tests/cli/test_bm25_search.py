"""A bm25 search needs no embedding model: it works on a KB whose embedder cannot even be
loaded, shows no similarity ("-"/null) and says the calibrated gate is not applied."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ragortune.errors import ConfigError
from ragortune.kb import open_kb
from ragortune.kb.sync import sync
from ragortune.retrieve import search


def _kb(tmp_path: Path, embedder) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "routers.md").write_text("# Routers\n\nSet the uplink port before the firewall.\n")
    (docs / "lunch.md").write_text("# Lunch\n\nThe canteen serves soup on Fridays.\n")
    sync(open_kb(tmp_path / "kb", embedder=embedder, create=True), [docs])
    return tmp_path / "kb"


def test_a_bm25_search_does_not_load_the_embedder(tmp_path, embedder):
    kb = open_kb(_kb(tmp_path, embedder))  # lazy: the model loads on first use
    hits = search(kb, "uplink port", k=2, mode="bm25")
    assert hits[0].source.endswith("routers.md") and hits[0].similarity is None
    assert kb._embedder is None
    gated = search(kb, "uplink port", k=2, mode="bm25", min_score=0.0)  # a gate needs cosines
    assert gated[0].similarity is not None and kb._embedder is not None


def test_bm25_search_works_when_the_embedding_model_cannot_load(tmp_path, embedder, monkeypatch):
    from ragortune.cli import app

    path = _kb(tmp_path, embedder)
    settings = json.loads((path / "kb.json").read_text())
    settings.update(embedder="st:/nonexistent/model", min_score=0.4)  # calibrated, unloadable
    (path / "kb.json").write_text(json.dumps(settings))
    monkeypatch.setenv("COLUMNS", "100")
    runner = CliRunner()
    found = runner.invoke(app, ["search", "uplink port", "--mode", "bm25", "--kb", str(path),
                                "--json"])
    assert found.exit_code == 0, found.output
    hit = json.loads(found.stdout)["hits"][0]
    assert hit["source"].endswith("routers.md")
    assert hit["similarity"] is None and hit["below_threshold"] is None
    shown = runner.invoke(app, ["search", "uplink port", "--mode", "bm25", "--kb", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "similarity -" in shown.stdout and "not applied" in shown.stdout
    dense = runner.invoke(app, ["search", "uplink port", "--mode", "dense", "--kb", str(path)])
    # The model really is unloadable: a dense search stops on that user error.
    assert isinstance(dense.exception, ConfigError) and "nonexistent" in str(dense.exception)
