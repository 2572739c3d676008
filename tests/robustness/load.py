"""Load while re-indexing (issue 16 item 5), shared by the test and the bench: a real
`ragortune serve` (uvicorn) and many concurrent clients on /v1/search and
/v1/chat/completions while `ragortune ingest` rewrites every document of the same KB.

Every document says which edition it is; a response is consistent when all its hits come
from one edition, and stale when a request sent after the ingest had committed still sees
the old one.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.robustness.hostile import ragortune_command

TOKEN = "load-test-token-16"
EDITION = re.compile(r"edition (alpha|beta)")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "RAGORTUNE_API_TOKEN": TOKEN}


@dataclass
class LoadResult:
    clients: int
    requests: dict[str, int] = field(default_factory=lambda: {"search": 0, "chat": 0})
    errors: list[str] = field(default_factory=list)     # 5xx, transport errors, bad bodies
    mixed: int = 0                                       # hits from two editions in one response
    stale_after_commit: int = 0
    after_commit: int = 0                                # requests sent after the commit
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"search": [], "chat": []})
    seconds: float = 0.0
    ingest_seconds: float = 0.0

    def percentile(self, kind: str, q: float) -> float:
        values = sorted(self.latencies[kind])
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0


def write_policies(folder: Path, edition: str, count: int = 30) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"policy-{i:02}.md").write_text(
            f"# Policy {i}\n\nThis is edition {edition} of policy {i}. The edition marker of "
            f"policy {i} is {edition}. Requests for policy {i} go to desk {i * 3}.\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(kb: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(ragortune_command("serve", "--kb", str(kb), "--port", str(port),
                                                 "-k", "3", "--max-tokens", "4", *extra),
                               env=ENV, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("server did not start within 600 s")


def _editions(texts: list[str]) -> set[str]:
    return {m for text in texts for m in EDITION.findall(text)}


async def _client(n: int, url: str, result: LoadResult, state: dict, chat_every: int,
                  after: int, deadline: float) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        done_after = 0
        i = 0
        while done_after < after and time.monotonic() < deadline:
            chat = chat_every and n % chat_every == 0 and i < 2  # a chat client asks twice
            kind = "chat" if chat else "search"
            sent_after_commit = state["committed"]
            started = time.perf_counter()
            try:
                if chat:
                    response = await client.post("/v1/chat/completions", json={
                        "model": "ragortune", "max_tokens": 4, "messages": [
                            {"role": "user", "content": f"What is the edition marker of policy {n % 30}?"}]})
                else:
                    response = await client.post("/v1/search", json={
                        "query": f"edition marker of policy {(n + i) % 30}", "k": 5,
                        "mode": ("hybrid", "dense", "bm25")[i % 3]})
            except httpx.HTTPError as exc:
                result.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                i += 1
                continue
            result.latencies[kind].append(time.perf_counter() - started)
            result.requests[kind] += 1
            i += 1
            if response.status_code != 200:
                result.errors.append(f"{kind}: HTTP {response.status_code} {response.text[:200]}")
                continue
            body = response.json()
            texts = [h["text"] for h in (body.get("sources") if chat else body.get("hits")) or []]
            editions = _editions(texts)
            if len(editions) > 1:
                result.mixed += 1
            if sent_after_commit:
                result.after_commit += 1
                done_after += 1
                if "alpha" in editions:
                    result.stale_after_commit += 1


async def _load(url: str, kb: Path, docs: Path, result: LoadResult, chat_every: int,
                after: int, limit_s: float) -> None:
    state = {"committed": False}
    deadline = time.monotonic() + limit_s
    tasks = [asyncio.create_task(_client(n, url, result, state, chat_every, after, deadline))
             for n in range(result.clients)]
    await asyncio.sleep(2)  # every client running before the ingest starts
    write_policies(docs, "beta")
    started = time.perf_counter()
    ingest = await asyncio.create_subprocess_exec(
        *ragortune_command("ingest", str(docs), "--kb", str(kb), "--json"), env=ENV,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await ingest.communicate()
    result.ingest_seconds = time.perf_counter() - started
    if ingest.returncode != 0:
        result.errors.append(f"ingest failed: {stderr.decode()[-500:]}")
    state["committed"] = True
    await asyncio.gather(*tasks)


def run_load(work: Path, embedder, clients: int = 50, chat_every: int = 10, after: int = 3,
             limit_s: float = 600) -> LoadResult:
    """`clients` concurrent clients (every `chat_every`-th also asks /v1/chat/completions
    twice) until each has had `after` answers to requests sent after the ingest committed."""
    from ragortune.kb import open_kb
    from ragortune.kb.sync import sync

    docs, kb = work / "docs", work / "kb"
    write_policies(docs, "alpha")
    sync(open_kb(kb, embedder=embedder, create=True), [docs])
    server, url = start_server(kb, work / "server.log")
    result = LoadResult(clients)
    started = time.perf_counter()
    try:
        asyncio.run(_load(url, kb, docs, result, chat_every, after, limit_s))
    finally:
        result.seconds = time.perf_counter() - started
        server.terminate()
        server.wait(timeout=60)
    log = (work / "server.log").read_text()
    if "Traceback" in log:
        result.errors.append("server log holds a traceback: " + log[-800:])
    return result
