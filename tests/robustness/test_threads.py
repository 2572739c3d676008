"""Issue 16 item 7: thread pools sized for the machine before torch, MKL or OpenBLAS load
(half the usable CPUs, at least 1), the tokenizers' pool off, and the user's choice kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = ("import json, os, ragortune.cli, torch; print(json.dumps({'torch': torch.get_num_threads(),"
         " **{k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', "
         "'OPENBLAS_NUM_THREADS', 'TOKENIZERS_PARALLELISM')}}))")


def probe(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                         "TOKENIZERS_PARALLELISM", "RAGORTUNE_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_cli_sizes_every_thread_pool_to_half_the_cpus():
    expected = max(1, len(os.sched_getaffinity(0)) // 2)
    got = probe()
    assert got == {"torch": expected, "OMP_NUM_THREADS": str(expected),
                   "MKL_NUM_THREADS": str(expected), "OPENBLAS_NUM_THREADS": str(expected),
                   "TOKENIZERS_PARALLELISM": "false"}


def test_a_thread_count_the_user_set_wins():
    cpus = len(os.sched_getaffinity(0))  # torch never goes above the CPUs it may use
    got = probe(OMP_NUM_THREADS="2")
    assert got["torch"] == min(2, cpus) and got["MKL_NUM_THREADS"] == "2"
    got = probe(RAGORTUNE_THREADS="2", OMP_NUM_THREADS="5")
    assert got["OMP_NUM_THREADS"] == got["OPENBLAS_NUM_THREADS"] == "2"
    assert got["torch"] == min(2, cpus)


def test_a_bad_thread_count_is_a_one_line_error():
    result = subprocess.run([sys.executable, "-c", "from ragortune.cli import main; main()",
                             "status"], env={**os.environ, "RAGORTUNE_THREADS": "many"},
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("error: RAGORTUNE_THREADS")
