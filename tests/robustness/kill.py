"""Crash safety under random kills (issue 16 item 3), shared by the test and the bench.

Each trial starts the real CLI, SIGKILLs it after a seeded random share of an uninterrupted
run's wall time, then checks what a user relies on: the KB opens, `status` agrees with the
manifest and the store, search answers, and a rerun converges to exactly the content of an
uninterrupted run. `tune train` trials check that a rerun resumes to the same log and weights.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.robustness.hostile import ragortune_command

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


@dataclass
class Trial:
    kind: str
    seed: int
    kill_after_s: float
    killed: bool          # False when the run ended before the kill came
    passed: bool
    detail: str = ""


def write_notes(folder: Path, edition: int, count: int = 40) -> None:
    """`count` notes; edition 2 edits a third, deletes a sixth, renames one, adds five."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i in range(count):
        if edition == 2 and i % 6 == 5:
            continue  # deleted
        name = f"note-{i:03}.md" if not (edition == 2 and i == 0) else "renamed-note-000.md"
        body = " ".join(f"Fact {i}.{j}: item {j} of note {i} sits on shelf {i * 7 + j}."
                        for j in range(10))
        if edition == 2 and i % 3 == 1:
            body += f" Revised: shelf {i} moved to the annex."
        (folder / name).write_text(f"# Note {i}\n\n{body}\n")
    if edition == 2:
        for i in range(count, count + 5):
            (folder / f"note-{i:03}.md").write_text(f"# Note {i}\n\nNew note {i} on shelf {i}.\n")


def kb_content(kb_path: Path) -> dict:
    """What a KB holds, in a form two KBs can be compared by: documents with their hashes and
    chunk ids, and the store's rows at the manifest's version."""
    import lancedb

    manifest = json.loads((kb_path / "manifest.json").read_text())
    table = lancedb.connect(str(kb_path / "store")).open_table("chunks")
    table.checkout(manifest["version"])
    rows = table.to_arrow().select(["chunk_id", "content_hash", "text"]).to_pylist()
    return {"documents": {k: (d["hash"], [c for c, _ in d["chunks"]])
                          for k, d in manifest["documents"].items()},
            "rows": sorted((r["chunk_id"], r["content_hash"], r["text"]) for r in rows)}


def check_kb(kb_path: Path, embedder) -> str:
    """'' when the KB opens, agrees with its manifest and answers searches; else what is wrong."""
    from ragortune.kb import open_kb
    from ragortune.retrieve import search

    kb = open_kb(kb_path, embedder=embedder)
    content = kb_content(kb_path)
    status = kb.status()
    manifest_ids = sorted(c for _, ids in content["documents"].values() for c in ids)
    if sorted(r[0] for r in content["rows"]) != manifest_ids:
        return "store rows differ from the manifest's chunks"
    if status["documents"] != len(content["documents"]) or status["chunks"] != len(manifest_ids):
        return f"status {status['documents']}/{status['chunks']} disagrees with the manifest"
    if manifest_ids and not search(kb, "shelf", k=3, mode="hybrid"):
        return "search found nothing in a non-empty KB"
    return ""


def _run_and_kill(command: list[str], delay: float) -> bool:
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def ingest_trials(work: Path, trials: int, seed: int, embedder, incremental: bool) -> list[Trial]:
    """SIGKILL `ragortune ingest` (a first ingest, or an incremental one over an edited
    corpus) `trials` times; every trial must pass all the checks of `check_kb`."""
    from ragortune.kb import open_kb
    from ragortune.kb.sync import sync

    kind = "incremental ingest" if incremental else "ingest"
    docs = work / "docs"
    base_kb = work / "base-kb"  # edition 1 indexed: where an incremental trial starts
    write_notes(docs, 1)
    if incremental and not base_kb.exists():
        sync(open_kb(base_kb, embedder=embedder, create=True), [docs])
    if incremental:
        write_notes(docs, 2)

    def fresh(path: Path) -> None:
        if path.exists():
            shutil.rmtree(path)
        if incremental:
            shutil.copytree(base_kb, path)
        else:
            open_kb(path, embedder=embedder, create=True)

    def command(kb: Path) -> list[str]:
        return ragortune_command("ingest", str(docs), "--kb", str(kb), "--batch-size", "8",
                                 "--json")

    reference = work / "reference-kb"
    fresh(reference)
    started = time.perf_counter()
    subprocess.run(command(reference), env=ENV, check=True, capture_output=True, timeout=900)
    wall = time.perf_counter() - started
    expected = kb_content(reference)
    rng = random.Random(seed)
    results = []
    for n in range(trials):
        kb = work / "trial-kb"
        fresh(kb)
        delay = rng.uniform(0.05, 0.9) * wall
        killed = _run_and_kill(command(kb), delay)
        problem = check_kb(kb, embedder)
        if not problem:
            sync(open_kb(kb, embedder=embedder), [docs])  # the rerun
            problem = check_kb(kb, embedder)
            if not problem and kb_content(kb) != expected:
                problem = "the rerun did not converge to the uninterrupted run's content"
        results.append(Trial(kind, seed + n, round(delay, 2), killed, not problem, problem))
    return results


def train_trials(work: Path, trials: int, seed: int, base_model: Path, data: Path) -> list[Trial]:
    """SIGKILL `ragortune tune train` at random moments; a rerun must resume and end with the
    uninterrupted run's log (steps, examples, losses) and a loadable adapter."""
    common = ["--data", str(data), "--base", str(base_model), "--epochs", "3", "--batch-size",
              "2", "--lr", "1e-3", "--checkpoint-every", "4", "--no-validation", "--json"]
    reference = work / "reference-adapter"
    shutil.rmtree(reference, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(ragortune_command("tune", "train", *common, "--out", str(reference)),
                   env=ENV, check=True, capture_output=True, timeout=900)
    wall = time.perf_counter() - started
    expected = [json.loads(x) for x in (reference / "train_log.jsonl").read_text().splitlines()]
    rng = random.Random(seed)
    results = []
    for n in range(trials):
        out = work / "trial-adapter"
        shutil.rmtree(out, ignore_errors=True)
        delay = rng.uniform(0.05, 0.9) * wall
        killed = _run_and_kill(ragortune_command("tune", "train", *common, "--out", str(out)),
                               delay)
        rerun = subprocess.run(ragortune_command("tune", "train", *common, "--out", str(out)),
                               env=ENV, capture_output=True, text=True, timeout=900)
        problem = "" if rerun.returncode == 0 else f"rerun failed: {rerun.stderr[-300:]}"
        if not problem:
            log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
            same = [(e["step"], e["examples"]) for e in log] == [
                (e["step"], e["examples"]) for e in expected]
            close = all(abs(a["loss"] - b["loss"]) <= 1e-4 * max(1.0, abs(b["loss"]))
                        for a, b in zip(log, expected))
            if not (same and close):
                problem = "the resumed log differs from the uninterrupted run's"
            elif not (out / "adapter_config.json").is_file():
                problem = "no adapter after the rerun"
        results.append(Trial("tune train", seed + n, round(delay, 2), killed, not problem,
                             problem))
    return results


def tiny_base_model(folder: Path) -> Path:
    """A 2-layer Llama with random weights and the shipped SmolLM2 tokenizer (as in
    tests/tune/conftest.py): a real local model at a fraction of the cost per step."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ragortune.tune.tokens import load_tokenizer

    if (folder / "config.json").is_file():
        return folder
    tokenizer = load_tokenizer(None)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def chat_data(path: Path) -> Path:
    from tests.tune.conftest import FACTS, write_chat

    return write_chat(path, FACTS * 2)


if __name__ == "__main__":  # pragma: no cover - a manual run: python -m tests.robustness.kill
    sys.exit("run bench/robustness.py")
