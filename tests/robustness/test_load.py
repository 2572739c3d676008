"""Issue 16 item 5: 50 concurrent clients on /v1/search and /v1/chat/completions of a real
`ragortune serve` while `ragortune ingest` rewrites the KB: no 5xx, no response mixing two
KB versions, none stale once the ingest has committed."""

from __future__ import annotations

import os

from tests.robustness.load import run_load

CLIENTS = int(os.environ.get("RAGORTUNE_LOAD_CLIENTS", "50"))


def test_clients_during_a_reingest_get_no_errors_and_one_consistent_kb(tmp_path, embedder):
    result = run_load(tmp_path, embedder, clients=CLIENTS, after=2)
    assert result.errors == []
    assert result.requests["search"] > CLIENTS and result.requests["chat"] >= CLIENTS // 10
    assert result.mixed == 0
    assert result.after_commit >= CLIENTS * 2 and result.stale_after_commit == 0
