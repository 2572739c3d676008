"""A real `ragortune serve` in a subprocess on a free loopback port, over a small KB."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ragortune.kb.sync import sync
from ragortune.kb import KnowledgeBase, open_kb

DOCS = Path(__file__).parents[1] / "generate" / "data" / "docs"
TOKEN = "test-token-7f3a"


@dataclass
class Server:
    url: str
    token: str
    kb: KnowledgeBase
    docs: Path
    process: subprocess.Popen

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ragortune_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from ragortune.cli import main; main()", *args]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served")
    docs = root / "docs"
    shutil.copytree(DOCS, docs)
    kb = open_kb(root / "kb", create=True)
    sync(kb, [docs])
    port = free_port()
    env = {**os.environ, "RAGORTUNE_API_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = open(root / "server.log", "w")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        ragortune_command("serve", "--kb", str(kb.path), "--port", str(port), "-k", "3"),
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("server did not start within 300 s")
        time.sleep(0.5)
    yield Server(url, TOKEN, kb, docs, process)
    process.terminate()
    process.wait(timeout=30)
    log.close()
