from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from ragortune.errors import ConfigError
from ragortune.tune.train import LOG_FILE, RUN_FILE, TrainConfig, train

from .conftest import FACTS, write_chat


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from ragortune.cli import main; main()", *args]


def read_log(folder):
    return [json.loads(x) for x in (folder / LOG_FILE).read_text().splitlines()]


def test_adapter_is_written_with_how_it_was_made_and_loads_back(tmp_path, tiny_model_dir):
    from ragortune.models import load_causal_lm

    data = write_chat(tmp_path / "train.jsonl", FACTS[:6])
    held = write_chat(tmp_path / "held.jsonl", FACTS[6:])  # facts the adapter never trains on
    out = tmp_path / "adapter"
    result = train(TrainConfig(data=str(data), validation=str(held), base=str(tiny_model_dir),
                               out=str(out), epochs=2, batch_size=3, lr=1e-2, checkpoint_every=2))
    assert result.steps == 4 and result.resumed_from_step is None
    assert (out / "adapter_config.json").is_file() and not (out / "checkpoints").exists()
    made = json.loads((out / RUN_FILE).read_text())
    assert made["base_model"] == str(tiny_model_dir) and made["config"]["lora_r"] == 16
    assert made["config"]["validation"] == str(held)
    assert made["steps"] == 4 and made["tokens"] > 0
    both = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (data, held)]
    assert made["data_sha256"] == hashlib.sha256("".join(both).encode()).hexdigest()
    assert [v[0] for v in result.val_losses] == [0, 2, 4]
    assert made["val_losses"] == [list(v) for v in result.val_losses]
    assert result.val_losses[-1][1] < result.val_losses[0][1]  # the reply format carries over
    _, model = load_causal_lm(str(tiny_model_dir), adapter=str(out))
    assert type(model).__name__ == "PeftModelForCausalLM"

    # The same run validated on its own training file reports a lower loss: the held-out
    # figure above is the one that does not flatter the adapter.
    on_train = train(TrainConfig(data=str(data), validation=str(data), base=str(tiny_model_dir),
                                 out=str(tmp_path / "on-train"), epochs=2, batch_size=3, lr=1e-2,
                                 checkpoint_every=2))
    assert [e["loss"] for e in on_train.log] == pytest.approx([e["loss"] for e in result.log])
    assert on_train.val_losses[0][1] != result.val_losses[0][1]
    assert on_train.val_losses[-1][1] < result.val_losses[-1][1]


def test_a_run_killed_mid_way_resumes_on_the_same_steps_and_data_order(tmp_path, tiny_model_dir):
    data = write_chat(tmp_path / "train.jsonl", FACTS * 4)  # 32 examples
    common = ["--data", str(data), "--base", str(tiny_model_dir), "--epochs", "8", "--batch-size", "2",
              "--lr", "1e-3", "--checkpoint-every", "5", "--no-validation", "--json"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}

    reference = tmp_path / "reference"
    subprocess.run(cli("tune", "train", *common, "--out", str(reference)), check=True, env=env,
                   capture_output=True, timeout=600)
    expected = read_log(reference)
    assert len(expected) == 8 * 16

    out = tmp_path / "killed"
    proc = subprocess.Popen(cli("tune", "train", *common, "--out", str(out)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill once a few checkpoints exist, well before the end
        if (out / LOG_FILE).is_file() and len((out / LOG_FILE).read_text().splitlines()) >= 23:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    killed_at = len(read_log(out))
    assert 23 <= killed_at < len(expected), "the run finished before it could be killed"

    done = subprocess.run(cli("tune", "train", *common, "--out", str(out)), check=True, env=env,
                          capture_output=True, text=True, timeout=600)
    result = json.loads(done.stdout)
    assert 20 <= result["resumed_from_step"] <= killed_at and result["resumed_from_step"] % 5 == 0
    resumed = read_log(out)
    assert [e["examples"] for e in resumed] == [e["examples"] for e in expected]
    assert [e["step"] for e in resumed] == list(range(1, len(expected) + 1))
    for got, want in zip(resumed, expected):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4, abs=1e-5)


def test_a_stopped_run_resumes_to_the_same_log_counts_and_validation_as_one_straight_run(
        tmp_path, tiny_model_dir):
    """In-process twin of the kill test, with micro-batches and sparse logging: the resumed run
    restores the step, the token counters, the log and the validation losses from its checkpoint."""
    data = write_chat(tmp_path / "train.jsonl", FACTS * 2)  # 16 examples: 4 steps an epoch
    common = {"data": str(data), "validation": str(data), "base": str(tiny_model_dir), "epochs": 2,
              "batch_size": 4, "grad_accum": 2, "log_every": 2, "eval_every": 3, "checkpoint_every": 3,
              "lr": 1e-2}
    straight = train(TrainConfig(out=str(tmp_path / "straight"), **common))
    stopped = train(TrainConfig(out=str(tmp_path / "resumed"), max_steps=4, keep_checkpoints=True, **common))
    assert stopped.steps == 4
    resumed = train(TrainConfig(out=str(tmp_path / "resumed"), **common))

    def untimed(log):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in log]

    assert resumed.resumed_from_step == 4 and resumed.steps == straight.steps == 8
    assert untimed(resumed.log) == untimed(straight.log)
    assert untimed(read_log(tmp_path / "resumed")) == untimed(read_log(tmp_path / "straight"))
    assert (resumed.tokens, resumed.target_tokens) == (straight.tokens, straight.target_tokens)
    assert [s for s, _ in resumed.val_losses] == [s for s, _ in straight.val_losses] == [0, 3, 4, 6, 8]
    assert [v for _, v in resumed.val_losses] == pytest.approx([v for _, v in straight.val_losses], rel=1e-6)
    assert resumed.cpu_seconds >= stopped.cpu_seconds > 0


def test_checkpoints_of_other_settings_are_not_resumed(tmp_path, tiny_model_dir, chat_file):
    out = tmp_path / "a"
    cfg = TrainConfig(data=str(chat_file), base=str(tiny_model_dir), out=str(out), epochs=1,
                      batch_size=4, keep_checkpoints=True)
    train(cfg)
    cfg.lr = 1e-3
    with pytest.raises(ConfigError, match="different run"):
        train(cfg)


def test_shipped_smollm2_learns_and_its_adapter_and_merged_weights_load_back(tmp_path):
    """The default model: loss falls on the facts it trains on; the adapter and the merged
    weights (GGUF-loaded base, so quantization_config must go) load through load_causal_lm."""
    from ragortune.generate.local import LocalLLM
    from ragortune.models import load_causal_lm

    data = write_chat(tmp_path / "train.jsonl", FACTS[:4])
    held = write_chat(tmp_path / "held.jsonl", FACTS[4:6])
    out = tmp_path / "smol"
    result = train(TrainConfig(data=str(data), validation=str(held), out=str(out), epochs=2,
                               batch_size=4, lr=2e-3, merge=True))
    assert result.loss_last < result.loss_first  # the training facts' loss falls
    assert [s for s, _ in result.val_losses] == [0, 1, 2]  # base model, then each epoch's end
    assert all(math.isfinite(v) and v > 0 for _, v in result.val_losses)  # from the held-out file
    assert result.peak_memory_bytes > 0 and result.tokens_per_s > 0
    tokenizer, model = load_causal_lm(None, adapter=str(out))
    answer = LocalLLM(tokenizer, model, "ft").complete(
        [{"role": "user", "content": FACTS[2][0]}], max_tokens=12)
    assert answer.text
    _, merged = load_causal_lm(str(out / "merged"))
    assert merged.config.model_type == "llama"
