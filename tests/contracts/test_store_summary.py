"""What the PostgreSQL store adds on top of the contract: one-round-trip hybrid search, cheap
status, and `--store` on the answer commands. The summary test runs on both stores."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from ragortune.cli import app
from ragortune.kb import open_kb
from ragortune.kb.sync import sync
from ragortune.retrieve import search_store
from tests.contracts.test_store_contract import make_docs, manifest_ids, stored_ids


class ThreeTrips:
    """The same PostgreSQL store, seen through the plain protocol only."""

    def __init__(self, store):
        self._store = store

    def dense_search(self, vector, k):
        return self._store.dense_search(vector, k)

    def text_search(self, query, k):
        return self._store.text_search(query, k)

    def similarities(self, vector, chunk_ids):
        return self._store.similarities(vector, chunk_ids)


def test_one_round_trip_hybrid_finds_what_three_queries_find(embedder, tmp_path, postgres_url):
    kb = open_kb(f"{postgres_url}#trips-{tmp_path.name}", embedder=embedder, create=True)
    sync(kb, [make_docs(tmp_path / "docs")])
    store = kb.reader()
    for query in ("how many days of paid leave", "Pro plan price", "firewall uplink"):
        vector = kb.embed_query(query)
        one = search_store(store, query, vector, k=4, mode="hybrid", min_score=0.1)
        three = search_store(ThreeTrips(store), query, vector, k=4, mode="hybrid", min_score=0.1)
        assert [h.chunk_id for h in one] == [h.chunk_id for h in three] and one
        assert np.allclose([h.similarity for h in one], [h.similarity for h in three], atol=1e-6)
        assert np.allclose([h.score for h in one], [h.score for h in three], atol=1e-6)


def test_status_counts_what_the_manifest_holds(kb_locator, embedder, tmp_path):
    kb = open_kb(kb_locator, embedder=embedder, create=True)
    sync(kb, [make_docs(tmp_path / "docs")])
    status = open_kb(kb_locator).status()
    assert status["documents"] == 4 and status["chunks"] == len(manifest_ids(kb))
    assert status["store_version"] == kb.load_manifest().version
    assert status["chunks"] == len(stored_ids(kb))


def test_ask_and_status_take_the_store_flag(embedder, tmp_path, postgres_url):
    name = f"flag-{tmp_path.name}"
    sync(open_kb(name, embedder=embedder, create=True, store=postgres_url),
         [make_docs(tmp_path / "docs")])
    runner = CliRunner()
    status = runner.invoke(app, ["status", "--store", postgres_url, "--kb", name, "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["documents"] == 4
    # a question nothing in the KB answers is gated before any LLM loads
    asked = runner.invoke(app, ["ask", "lattice gauge theory of quarks", "--store", postgres_url,
                                "--kb", name, "--min-score", "0.9", "--json"])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.output)
    assert answer["abstained"] is True and answer["citations"] == []


def test_ef_search_is_the_users_to_raise_and_a_bad_value_is_refused(embedder, tmp_path,
                                                                    postgres_url, monkeypatch):
    """RAGORTUNE_PG_EF_SEARCH reaches the session that searches (more recall for more latency,
    docs/scale.md); a value pgvector would refuse is a clear error, not a database traceback."""
    import pytest

    from ragortune.errors import ConfigError

    monkeypatch.setenv("RAGORTUNE_PG_EF_SEARCH", "400")
    kb = open_kb(f"{postgres_url}#ef-{tmp_path.name}", embedder=embedder, create=True)
    sync(kb, [make_docs(tmp_path / "docs")])
    store = open_kb(f"{postgres_url}#ef-{tmp_path.name}").reader()
    assert store.dense_search(kb.embed_query("paid leave"), 3)
    assert store.connection.execute("SHOW hnsw.ef_search").fetchone()[0] == "400"
    monkeypatch.setenv("RAGORTUNE_PG_EF_SEARCH", "lots")
    with pytest.raises(ConfigError, match="RAGORTUNE_PG_EF_SEARCH='lots'"):
        open_kb(f"{postgres_url}#ef-{tmp_path.name}").reader().dense_search(
            kb.embed_query("paid leave"), 3)
