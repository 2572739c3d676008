"""What a finished LoRA run leaves behind: the adapter, `ragortune_train.json` (how it was made,
what `eval`, `retrain` and a reader of the folder rely on), merged weights on request, and the
`TrainResult` handed back to the caller."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ragortune.io import write_json_atomic
from ragortune.tune import checkpoint
from ragortune.tune.train_config import RUN_FILE, TrainConfig, TrainResult
from ragortune.tune.train_steps import RunState, Runtime, TrainData


# ---- the end: adapter, how it was made, optionally merged weights ----------------------------------
def save_artefacts(
    cfg: TrainConfig, out: Path, model: Any, tokenizer: Any, record: dict[str, Any]
) -> Path | None:
    """The adapter, `ragortune_train.json`, merged weights with --merge; then the checkpoints
    go unless kept. Returns the merged weights' folder, if any."""
    save_adapter(model, out)
    write_json_atomic(out / RUN_FILE, record, indent=2)
    merged_dir = save_merged(model, tokenizer, out / "merged") if cfg.merge else None
    if not cfg.keep_checkpoints:
        checkpoint.clear(out / "checkpoints")
    return merged_dir


def run_record(
    cfg: TrainConfig, data: TrainData, state: RunState, runtime: Runtime, peak: tuple[int, str]
) -> dict[str, Any]:
    """How the adapter was made: what `eval`, `retrain` and a reader of the folder rely on."""
    device = runtime.device
    losses = [e["loss"] for e in state.log]
    return {
        "base_model": cfg.base or "smollm2",
        "data_sha256": data.sha256,
        "dataset_build": data.build_record,
        "config": asdict(cfg),
        "steps": state.step,
        "examples": len(data.train),
        "truncated": data.truncated,
        "tokens": state.tokens,
        "target_tokens": state.target_tokens,
        "train_seconds": round(state.train_seconds, 3),
        "cpu_seconds": round(state.cpu_seconds, 3),
        "tokens_per_s": round(state.tokens / state.train_seconds if state.train_seconds else 0.0, 1),
        "peak_memory_bytes": peak[0],
        "peak_memory_kind": peak[1],
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "val_losses": state.val_losses,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "processes": runtime.world,
        "precision": runtime.precision,
        "resumed_from_step": state.resumed_from,
        "versions": package_versions(),
        "host": platform.node(),
    }


def save_merged(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Base and adapter folded into plain weights that load without peft."""
    merged = model.merge_and_unload()
    if hasattr(merged.config, "quantization_config"):
        del merged.config.quantization_config  # a GGUF-loaded model refuses to save otherwise
    if getattr(merged, "hf_quantizer", None) is not None:
        merged.hf_quantizer = None  # the weights are plain floats after dequantising
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_adapter(model: Any, out: Path) -> None:
    """peft's adapter files, written beside each other in a temp folder then moved into `out`."""
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".adapter-"))
    try:
        model.save_pretrained(tmp)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def result_of(
    cfg: TrainConfig, out: Path, merged: Path | None, record: dict[str, Any], total_steps: int,
    state: RunState, runtime: Runtime,
) -> TrainResult:
    """What the caller gets back: the run record's figures plus the per-step log."""
    shared = ("steps", "examples", "truncated", "loss_first", "loss_last", "val_losses", "tokens",
              "target_tokens", "train_seconds", "tokens_per_s", "peak_memory_bytes", "peak_memory_kind",
              "precision", "resumed_from_step", "cpu_seconds")
    return TrainResult(out=str(out), adapter=str(out), merged=str(merged) if merged else None,
                       total_steps=total_steps, epochs=cfg.epochs, device=str(runtime.device),
                       log=state.log, **{key: record[key] for key in shared})


def peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda max_memory_allocated"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "process peak RSS"


def package_versions() -> dict[str, str]:
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
