"""Issue 16 item 3: SIGKILL at seeded random moments, then the KB (or the adapter) is checked
and a rerun must converge to the uninterrupted run. `make test` runs 2 trials of each kind;
`RAGORTUNE_KILL_TRIALS=20` (bench/robustness.py) runs the full harness."""

from __future__ import annotations

import os

import pytest

from tests.robustness.kill import chat_data, ingest_trials, tiny_base_model, train_trials

TRIALS = int(os.environ.get("RAGORTUNE_KILL_TRIALS", "2"))


def failures(trials):
    return [t for t in trials if not t.passed]


@pytest.mark.parametrize("incremental", [False, True], ids=["ingest", "incremental"])
def test_a_killed_ingest_leaves_a_kb_that_opens_and_a_rerun_converges(tmp_path, embedder,
                                                                      incremental):
    trials = ingest_trials(tmp_path, TRIALS, seed=16, embedder=embedder, incremental=incremental)
    assert len(trials) == TRIALS and not failures(trials), failures(trials)
    assert any(t.killed for t in trials), "every run ended before its kill: nothing was tested"


def test_a_killed_training_run_resumes_to_the_uninterrupted_result(tmp_path):
    base = tiny_base_model(tmp_path / "tiny")
    trials = train_trials(tmp_path, TRIALS, seed=16, base_model=base,
                          data=chat_data(tmp_path / "train.jsonl"))
    assert not failures(trials), failures(trials)
    assert any(t.killed for t in trials), "every run ended before its kill: nothing was tested"
