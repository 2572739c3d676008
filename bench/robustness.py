"""Issue 16's closing figures in one run: hostile corpus, SIGKILL trials, fuzz cases, load while
re-indexing, the planted-key grep, and `ask` latency with and without the thread fix.

    python bench/robustness.py                 # 20 kill trials of each kind, 300 fuzz examples
    python bench/robustness.py --kill-trials 3 --fuzz-examples 50 --clients 50   # quicker

Figures depend on the machine and its load; the script prints both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LATENCY_PROBE = """
import json, sys, time
from ragortune.generate import load_llm
from ragortune.generate.prompts import Passage, rag_messages
import torch
llm = load_llm(sys.argv[1])
notes = [Passage(" ".join(f"Fact {i}.{j}: item {j} of note {i} sits on shelf {i * 7 + j}."
                          for j in range(12)), "n.md") for i in range(3)]
messages = rag_messages("Which shelf holds item 3 of note 1?", notes)
llm.complete(messages, max_tokens=4)
times = {"complete": [], "stream": []}
for _ in range(2):
    for kind in times:
        t = time.perf_counter()
        llm.complete(messages, max_tokens=32) if kind == "complete" else list(
            llm.stream(messages, max_tokens=32))
        times[kind].append(time.perf_counter() - t)
print(json.dumps({"torch_threads": torch.get_num_threads(), **times}))
"""


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def hostile(work: Path) -> None:
    from tests.robustness.hostile import (indexed_sources, make_corpus, ragortune_command,
                                          run_measured, skipped_by_name)

    section("hostile corpus through `ragortune ingest`")
    corpus = make_corpus(work / "docs")
    started = time.perf_counter()
    result, peak = run_measured(ragortune_command("ingest", str(corpus.root), "--kb",
                                                  str(work / "kb"), "--json"))
    report = json.loads(result.stdout)
    skipped = skipped_by_name(report, corpus.root)
    indexed = indexed_sources(work / "kb")
    good_indexed = sum(f"{corpus.root.resolve()}/{g}" in indexed for g in corpus.good)
    reported = sum(name in skipped and reason.lower() in skipped[name].lower()
                   for name, reason in corpus.bad.items())
    print(f"files tried: {len(corpus.good) + len(corpus.bad)} ({len(corpus.good)} good, "
          f"{len(corpus.bad)} bad; +1 hidden file ignored by design)")
    print(f"indexed: {good_indexed}/{len(corpus.good)} good files ({len(indexed)} sources); "
          f"skipped with the expected reason: {reported}/{len(corpus.bad)}")
    print(f"exit code {result.returncode}, traceback: {'Traceback' in result.stderr}, "
          f"peak RSS {peak / 1024:.0f} MiB, {time.perf_counter() - started:.1f} s")
    for name in sorted(skipped):
        print(f"  skipped {name!r}: {skipped[name]}")


def kills(work: Path, trials: int, embedder) -> None:
    from tests.robustness.kill import (chat_data, ingest_trials, tiny_base_model,
                                       train_trials)

    section(f"SIGKILL at seeded random moments ({trials} trials each)")
    for name, run in (
            ("ingest", lambda: ingest_trials(work / "i", trials, 16, embedder, False)),
            ("incremental ingest", lambda: ingest_trials(work / "r", trials, 16, embedder, True)),
            ("tune train", lambda: train_trials(work / "t", trials, 16,
                                                tiny_base_model(work / "tiny"),
                                                chat_data(work / "train.jsonl")))):
        (work / name[0]).mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        results = run()
        passed = sum(t.passed for t in results)
        killed = sum(t.killed for t in results)
        print(f"{name}: {passed}/{len(results)} passed ({killed} killed mid-run, "
              f"{len(results) - killed} finished first), {time.perf_counter() - started:.0f} s")
        for t in results:
            if not t.passed:
                print(f"  FAILED seed {t.seed} after {t.kill_after_s} s: {t.detail}")


def fuzz(examples: int) -> None:
    import pytest

    section(f"hypothesis fuzzing ({examples} examples per property)")
    os.environ["RAGORTUNE_FUZZ_EXAMPLES"] = str(examples)
    code = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests/robustness/test_fuzz.py")])
    module = next(m for name, m in sys.modules.items() if name.endswith("test_fuzz"))
    cases: Counter = module.CASES
    for name, n in cases.items():
        print(f"  {name}: {n} cases")
    print(f"fuzz cases run: {sum(cases.values())}, pytest exit code {code}")


def load(work: Path, clients: int, embedder) -> None:
    from tests.robustness.load import run_load

    section(f"load: {clients} clients on /v1/search and /v1/chat/completions during an ingest")
    r = run_load(work, embedder, clients=clients, after=3)
    total = sum(r.requests.values())
    print(f"requests: {total} ({r.requests['search']} search, {r.requests['chat']} chat) in "
          f"{r.seconds:.1f} s = {total / r.seconds:.1f} req/s; ingest took {r.ingest_seconds:.1f} s")
    print(f"errors: {len(r.errors)}; mixed-version responses: {r.mixed}; stale after the commit: "
          f"{r.stale_after_commit} of {r.after_commit}")
    for kind in ("search", "chat"):
        print(f"  {kind}: p50 {r.percentile(kind, 0.5):.0f} ms, p99 {r.percentile(kind, 0.99):.0f} ms")
    for error in r.errors[:5]:
        print(f"  error: {error}")


def planted_key() -> None:
    import pytest

    section("planted keys: grep of every output and file")
    code = pytest.main(["-q", "-p", "no:cacheprovider", str(
        ROOT / "tests/robustness/test_secrets.py")])
    print("planted-key grep and key routing: " + (
        "pass, 0 occurrences of any planted key" if code == 0 else f"FAIL (pytest exit {code})"))


def latency() -> None:
    section("`ask` generation latency, SmolLM2, RAG prompt + 32 tokens (2 runs each)")
    cpus = len(os.sched_getaffinity(0))
    base = {k: v for k, v in os.environ.items() if k not in (
        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAGORTUNE_THREADS")}
    for spec in ("smollm2", "hf:smollm2"):  # CTranslate2 (default) and transformers
        for label, extra in ((f"without the fix ({cpus} threads, torch's default)",
                              {"OMP_NUM_THREADS": str(cpus)}),
                             ("with the fix (ragortune's default)", {})):
            probe = "import ragortune.cli\n" + LATENCY_PROBE  # the CLI's import sets the pools
            out = subprocess.run([sys.executable, "-c", probe, spec], env={**base, **extra},
                                 capture_output=True, text=True, timeout=900, check=False)
            if out.returncode != 0:
                print(f"{spec}, {label}: failed: {out.stderr[-300:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{spec}, {label}: {r['torch_threads']} torch threads; complete "
                  f"{', '.join(f'{t:.1f}' for t in r['complete'])} s; stream "
                  f"{', '.join(f'{t:.1f}' for t in r['stream'])} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-trials", type=int, default=20)
    parser.add_argument("--fuzz-examples", type=int, default=300)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["hostile", "kill", "fuzz", "load", "keys", "latency"])
    args = parser.parse_args()
    from ragortune.embed import load_embedder

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    embedder = load_embedder("minilm")
    with tempfile.TemporaryDirectory(prefix="ragortune-robustness-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        steps = {"hostile": lambda: hostile(work / "hostile"),
                 "kill": lambda: kills(work / "kill", args.kill_trials, embedder),
                 "fuzz": lambda: fuzz(args.fuzz_examples),
                 "load": lambda: load(work / "load", args.clients, embedder),
                 "keys": planted_key,
                 "latency": latency}
        for name, step in steps.items():
            if name not in args.skip:
                (work / name).mkdir(exist_ok=True)
                step()
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
