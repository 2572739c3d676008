"""Serving replicas: two `ragortune serve` processes on one PostgreSQL see an ingest as soon as
it commits, with nothing to reload."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from ragortune.kb import open_kb
from ragortune.kb.sync import sync
from tests.contracts.test_store_contract import make_docs
from tests.server.conftest import free_port, ragortune_command

NEW_FACT = "The staging cluster is rebuilt every Sunday at 02:00 UTC by the ops rota."


def start_replica(url: str, name: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # the LLM is an OpenAI-compatible endpoint that is never called: /v1/search needs none
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OPENAI_API_KEY": "unused",
           "RAGORTUNE_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    process = subprocess.Popen(
        ragortune_command("serve", "--store", url, "--kb", name, "--port", str(port),
                          "--llm", "openai:unused"),
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replica exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("replica did not start within 300 s")


def test_two_replicas_see_an_ingest_the_moment_it_commits(embedder, tmp_path, postgres_url):
    name = f"replicas-{tmp_path.name}"
    docs = make_docs(tmp_path / "docs")
    kb = open_kb(name, embedder=embedder, create=True, store=postgres_url)
    sync(kb, [docs])
    replicas = [start_replica(postgres_url, name, tmp_path / f"replica-{i}.log") for i in (0, 1)]
    try:
        for i, (process, base) in enumerate(replicas):
            wait_ready(process, base, tmp_path / f"replica-{i}.log")
        query = {"query": "when is the staging cluster rebuilt", "k": 1, "mode": "hybrid"}
        before = [httpx.post(f"{base}/v1/search", json=query, timeout=60).json()
                  for _, base in replicas]
        assert all("staging" not in r["hits"][0]["text"] for r in before)
        (docs / "ops.md").write_text(f"# Operations\n\n{NEW_FACT}\n")
        sync(kb, [docs])  # committed here; neither replica is told
        version = kb.summary()["store_version"]
        for _, base in replicas:
            found = httpx.post(f"{base}/v1/search", json=query, timeout=60).json()["hits"]
            assert found[0]["text"].endswith(NEW_FACT) and found[0]["source"].endswith("ops.md")
            health = httpx.get(f"{base}/healthz", timeout=10).json()
            assert health["store_version"] == version and health["chunks"] == 6
    finally:
        for process, _ in replicas:
            process.terminate()
        for process, _ in replicas:
            process.wait(timeout=30)
