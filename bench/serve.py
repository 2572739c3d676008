"""Throughput and latency of `POST /v1/search` under concurrent clients, from a second process.

    python bench/serve.py --kb demo-work/kb                      # starts `ragortune serve` itself
    python bench/serve.py --url http://127.0.0.1:8000 --token T  # or drives a running server

Queries cycle through the demo questions; `--distinct` makes every query text unique so the
server's query-vector cache never hits (the cold path: one embedding per request).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

QUESTIONS = Path(__file__).parents[1] / "examples" / "demo_kb" / "questions-v1.jsonl"


def start_server(kb: str, llm: str, token: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RAGORTUNE_API_TOKEN": token, "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from ragortune.cli import main; main()", "serve", "--kb", kb,
         "--llm", llm, "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("server did not start")


async def drive(url: str, token: str, queries: list[str], clients: int, total: int, k: int,
                mode: str, rate: float | None = None) -> tuple[list[float], list[str], float]:
    """Closed loop (each client sends when its last answer came) or, with `rate`, open loop:
    requests are due on a fixed schedule and latency counts from when each was due."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))
    headers = {"Authorization": f"Bearer {token}"}

    # One connection per client: httpx's shared pool serialises 20 connections and its own
    # overhead, not the server, then sets the tail (measured: p99 375 ms vs 49 ms on /healthz).
    # Clients are made before the clock starts: each builds an SSL context, which blocks the loop.
    https = [httpx.AsyncClient(base_url=url, headers=headers, timeout=30) for _ in range(clients)]

    async def client(http: httpx.AsyncClient) -> None:
        async with http:
            for i in counter:
                body = {"query": queries[i % len(queries)], "k": k, "mode": mode}
                started = time.perf_counter()
                if rate:
                    due = begin + i / rate
                    await asyncio.sleep(max(0.0, due - started))
                    started = due
                try:
                    response = await http.post("/v1/search", json=body)
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:100]}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                latencies.append(time.perf_counter() - started)

    begin = time.perf_counter()
    await asyncio.gather(*(client(http) for http in https))
    return latencies, errors, time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", help="KB folder; starts a server on a free loopback port")
    parser.add_argument("--url", help="a running server instead")
    parser.add_argument("--token", default="bench-token")
    parser.add_argument("--llm", default="smollm2", help="LLM the started server loads")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--distinct", action="store_true", help="unique query per request")
    parser.add_argument("--rate", type=float, help="open loop: offered requests per second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.kb or args.url):
        parser.error("give --kb (start a server) or --url (a running one)")
    texts = [json.loads(line)["text"] for line in QUESTIONS.read_text().splitlines() if line]
    process = None
    url = args.url
    if url is None:
        process, url = start_server(args.kb, args.llm, args.token)
    try:
        asyncio.run(drive(url, args.token, texts, args.clients, args.warmup, args.k, args.mode))
        queries = ([f"{texts[i % len(texts)]} ({i})" for i in range(args.requests)]
                   if args.distinct else texts)
        latencies, errors, seconds = asyncio.run(
            drive(url, args.token, queries, args.clients, args.requests, args.k, args.mode,
                  args.rate))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    ms = np.array(latencies) * 1000
    result = {"requests": len(latencies), "errors": len(errors), "clients": args.clients,
              "mode": args.mode, "distinct_queries": args.distinct, "offered_rate": args.rate,
              "seconds": round(seconds, 2),
              "requests_per_s": round(len(latencies) / seconds, 1),
              "latency_ms": {p: round(float(np.percentile(ms, q)), 1)
                             for p, q in (("p50", 50), ("p95", 95), ("p99", 99))},
              "first_errors": errors[:3]}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    lat = result["latency_ms"]
    offered = f", offered {args.rate:g} req/s" if args.rate else ", closed loop"
    print(f"/v1/search {args.mode} k={args.k}, {args.clients} clients{offered}, "
          f"{len(latencies)} requests{' (distinct queries)' if args.distinct else ''}: "
          f"{result['requests_per_s']} req/s, "
          f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, {len(errors)} errors")
    for error in errors[:3]:
        print("  error:", error)


if __name__ == "__main__":
    main()
