"""What a LoRA training run takes (`TrainConfig`), reports while it runs (`Progress`) and gives
back (`TrainResult`), and the files it names; the recipe is `tune.train.train`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
RUN_FILE = "ragortune_train.json"
LOG_FILE = "train_log.jsonl"


@dataclass
class TrainConfig:
    """Everything a run depends on; saved beside the adapter so it says how it was made."""

    data: str
    validation: str | None = None
    base: str | None = None  # None = the shipped SmolLM2; else a Hugging Face id or local path
    out: str = "adapter"
    epochs: int = 3
    batch_size: int = 8  # examples per optimiser step
    grad_accum: int = 1  # micro-batches per step (same result, less memory)
    max_seq_len: int = 2048
    lr: float = 2e-4
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ATTENTION
    # Adapt only the last N decoder layers (None = all): the backward pass then stops at the
    # lowest adapted layer (SmolLM2 on 2 CPU cores: 5.3 s a step for all 30, 3.2 s for 10).
    top_layers: int | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16
    qlora: bool = False  # 4-bit base weights (bitsandbytes + GPU)
    compile: bool = False
    gradient_checkpointing: bool = False
    checkpoint_every: int = 50  # steps; also at the end of every epoch
    eval_every: int = 0  # steps; 0 = at the end of every epoch
    log_every: int = 1
    max_steps: int | None = None  # stop early (smoke tests, benchmarks)
    resume: bool = True
    merge: bool = False  # also write merged full weights to OUT/merged
    keep_checkpoints: bool = False

    def fingerprint(self, data_hash: str) -> str:
        """What must match for a checkpoint to be resumed (not how often we log or save)."""
        keys = ("base", "epochs", "batch_size", "grad_accum", "max_seq_len", "lr", "warmup_ratio",
                "weight_decay", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "seed")
        values = {k: getattr(self, k) for k in keys}
        if self.top_layers is not None:  # absent otherwise: older checkpoints keep resuming
            values["top_layers"] = self.top_layers
        material = json.dumps(values | {"data": data_hash}, sort_keys=True)
        return hashlib.sha256(material.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Progress:
    """Reported to the caller after every logged step and every validation."""

    step: int
    total_steps: int
    epoch: int
    loss: float | None
    val_loss: float | None
    lr: float
    tokens_per_s: float
    eta_s: float


@dataclass(frozen=True)
class TrainResult:
    out: str
    adapter: str
    merged: str | None
    steps: int
    total_steps: int
    epochs: int
    examples: int
    truncated: int
    loss_first: float | None
    loss_last: float | None
    val_losses: list[tuple[int, float]]
    tokens: int
    target_tokens: int
    train_seconds: float
    tokens_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    device: str
    precision: str
    resumed_from_step: int | None
    cpu_seconds: float = 0.0  # process CPU time (all threads) of the training steps
    log: list[dict[str, Any]] = field(default_factory=list)
