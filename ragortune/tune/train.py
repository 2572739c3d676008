"""LoRA fine-tuning recipe, read top to bottom as torchtune's recipes are: `train()` calls one
setup step per part (runtime, base model, data, LoRA, optimiser and schedule, resume state),
then runs a short loop (forward, backward, step, log, validate, checkpoint) and saves.

What it keeps: a killed run resumes exactly mid-epoch (same batches, same losses; the kill -9
test), the loss of a step is weighted by token across its micro-batches, and logits are
projected onto the vocabulary only where there is a label. The building blocks live beside
it: `tokens.encode_chat` (labels on assistant replies only), `packing` (reproducible data
order, packed rows) and `checkpoint` (atomic checkpoint folders).

Not supported:
- full fine-tuning: only LoRA adapter weights train, the base stays frozen;
- objectives other than supervised chat (no DPO, reward models or RL, no loss on prompts);
- several GPUs without `accelerate launch`, and any parallelism but data parallel (no FSDP,
  DeepSpeed, tensor or pipeline parallel); a multi-process resume restores rank 0's RNG on
  every rank and needs the checkpoint folder on a shared file system;
- precisions other than fp32 and bf16 (no fp16 loss scaling); QLoRA needs CUDA,
  bitsandbytes and a safetensors model, and cannot be merged (`--merge`);
- resuming with other data or settings (the fingerprint must match), data larger than
  memory (the file is encoded up front), examples longer than `max_seq_len` (cut, counted);
- packing relies on transformers building a block-diagonal mask from restarting
  `position_ids`: checked on Llama-architecture models (tests/tune/test_packing.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import resource
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ragortune.errors import ConfigError, InputError
from ragortune.io import read_json, write_json_atomic, write_jsonl_atomic
from ragortune.models import load_causal_lm
from ragortune.tune import checkpoint
from ragortune.tune.packing import IGNORE, Batch, epoch_batches, pack, split_micro
from ragortune.tune.tokens import EncodedChat, encode_chat
from ragortune.tune.validate import check_example

# transformers 5 warns on every run that peft reads a renamed property; it is noise to a user.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.* is deprecated",
                        category=FutureWarning)

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


# ---- what the setup steps return ------------------------------------------------------------------
@dataclass(frozen=True)
class Runtime:
    """Where the run computes: accelerate's handle (one process, or one of `accelerate launch`'s),
    its device and the precision of the forward pass."""

    accelerator: Any
    device: torch.device
    precision: str  # fp32 | bf16

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def autocast(self) -> Any:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


@dataclass(frozen=True)
class TrainData:
    """The encoded examples and what identifies them: a checkpoint resumes only the same run."""

    train: list[EncodedChat]
    validation: list[EncodedChat]
    truncated: int
    sha256: str  # of the training file, or of both files' hashes with a validation file
    fingerprint: str  # TrainConfig.fingerprint of this data
    build_record: dict[str, Any] | None
    pad_id: int


@dataclass(frozen=True)
class Optimization:
    """AdamW over the adapter weights, its cosine schedule, and the number of steps they plan for."""

    optimizer: Any
    scheduler: Any
    trainable: list[torch.nn.Parameter]
    steps_per_epoch: int
    total_steps: int  # cfg.max_steps may stop the run before the schedule's end


@dataclass
class RunState:
    """What the run has done so far: saved in every checkpoint, restored on resume."""

    step: int = 0
    tokens: int = 0  # real tokens seen, all processes together
    target_tokens: int = 0  # of which carry a label
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0
    log: list[dict[str, Any]] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    resumed_from: int | None = None

    def counters(self) -> list[float]:
        """The checkpoint's `counters` entry (a list, so older checkpoints keep loading)."""
        return [self.tokens, self.target_tokens, self.train_seconds, self.cpu_seconds]

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any]) -> RunState:
        # checkpoints written before cpu_seconds was counted hold three counters
        tokens, target, seconds, cpu = [*saved["counters"], 0.0][:4]
        return cls(step=saved["step"], tokens=tokens, target_tokens=target, train_seconds=seconds,
                   cpu_seconds=cpu, log=saved["log"], val_losses=[tuple(v) for v in saved["val_losses"]],
                   resumed_from=saved["step"])


@dataclass
class LossMeter:
    """Training loss summed on the device between log lines: no host sync until it is read."""

    total: torch.Tensor
    steps: int = 0

    def add(self, micro_losses: list[torch.Tensor]) -> None:
        """One step's losses, one per micro-batch, added in order (a pre-summed step loss
        would round differently)."""
        for loss in micro_losses:
            self.total += loss
        self.steps += 1

    def take(self) -> float:
        value = float(self.total) / self.steps
        self.total.zero_()
        self.steps = 0
        return value


# ---- the recipe -------------------------------------------------------------------------------------
def train(
    cfg: TrainConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    tokenizer: Any = None,
    model: Any = None,
) -> TrainResult:
    """Train a LoRA adapter on chat JSONL and write it (plus `ragortune_train.json`) to `cfg.out`.
    A folder holding checkpoints of the same run is resumed from the newest one. `tokenizer`
    and `model` may be passed in already loaded (the model is modified: LoRA layers are added)."""
    runtime = _setup_runtime(cfg)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    checkpoint.discard_partial(ckpt_dir)
    if model is None:
        tokenizer, model = _load_base(cfg, runtime.device)
    data = _setup_data(cfg, tokenizer)  # before LoRA: a bad file fails before the model is touched
    peft_model = _setup_lora(cfg, model, runtime)  # kept for saving: whatever wraps it below
    optim = _setup_optimizer(cfg, peft_model, runtime, len(data.train))
    state = _resume(cfg, ckpt_dir, data.fingerprint, peft_model, optim, runtime.device)
    write_jsonl_atomic(out / LOG_FILE, state.log)  # drops lines written after that checkpoint
    model, optimizer = runtime.accelerator.prepare(peft_model, optim.optimizer)  # DDP; no-op on one device
    optim = replace(optim, optimizer=optimizer)
    if cfg.compile:
        model = torch.compile(model, dynamic=True)

    meter = LossMeter(torch.zeros((), device=runtime.device))
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    if state.resumed_from is None:
        _validate(model, data, cfg, runtime, state)  # the base model's loss: where the curve starts
    start_epoch = state.step // optim.steps_per_epoch if optim.steps_per_epoch else 0
    for epoch in range(start_epoch, cfg.epochs):
        batches = epoch_batches(len(data.train), cfg.batch_size, seed=cfg.seed, epoch=epoch,
                                rank=runtime.rank, world=runtime.world)
        for index, batch_ids in enumerate(batches):
            if epoch * optim.steps_per_epoch + index < state.step:
                continue  # trained before the resume: same order, so skipping is exact
            if state.step >= optim.total_steps:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            micro = [pack([data.train[i] for i in ids], ids, max_len=cfg.max_seq_len, pad_id=data.pad_id)
                     for ids in split_micro(batch_ids, cfg.grad_accum)]
            meter.add(_optimizer_step(model, micro, optim, runtime, cfg.max_grad_norm))
            state.step += 1
            state.tokens += sum(mb.n_tokens for mb in micro) * runtime.world
            state.target_tokens += sum(mb.n_targets for mb in micro) * runtime.world
            last_step = state.step == optim.total_steps
            loss = meter.take() if state.step % cfg.log_every == 0 or last_step else None
            state.train_seconds += time.perf_counter() - t0  # after reading the loss: the sync counts
            state.cpu_seconds += time.process_time() - c0
            lr = optim.scheduler.get_last_lr()[0]
            if loss is not None:
                _log_step(out, state, epoch, loss, lr, batch_ids, runtime)
            end_of_epoch = index == len(batches) - 1
            val_loss = None
            if (cfg.eval_every and state.step % cfg.eval_every == 0) or end_of_epoch or last_step:
                val_loss = _validate(model, data, cfg, runtime, state)
            if on_progress and (state.step % cfg.log_every == 0 or val_loss is not None):
                on_progress(_progress(state, optim.total_steps, epoch, val_loss, lr))
            if state.step % cfg.checkpoint_every == 0 or end_of_epoch or last_step:
                _save_checkpoint(ckpt_dir, data.fingerprint, peft_model, optim, state, runtime)
        if state.step >= optim.total_steps:
            break

    runtime.accelerator.wait_for_everyone()
    record = _run_record(cfg, data, state, runtime, _peak_memory(runtime.device))
    merged = _save_artefacts(cfg, out, peft_model, tokenizer, record) if runtime.is_main else None
    return _result(cfg, out, merged, record, optim.total_steps, state, runtime)


# ---- setup steps, in the order train() calls them ----------------------------------------------
def _setup_runtime(cfg: TrainConfig) -> Runtime:
    """Device and precision, refusing settings that cannot work before anything is loaded."""
    from accelerate import Accelerator

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is visible; use --device cpu")
    accelerator = Accelerator(cpu=cfg.device == "cpu")
    device = accelerator.device
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"--precision must be auto, fp32 or bf16, not {cfg.precision!r}")
    if cfg.qlora and cfg.merge:
        raise ConfigError("--merge cannot fold an adapter into 4-bit weights: drop --merge or --qlora")
    return Runtime(accelerator, device, precision)


def _load_base(cfg: TrainConfig, device: torch.device) -> tuple[Any, Any]:
    """(tokenizer, model): 4-bit base weights for QLoRA, else whatever `models.load_causal_lm`
    loads (the shipped SmolLM2, a Hugging Face id, a local folder or .gguf)."""
    if cfg.qlora:
        return _load_4bit(cfg.base, device)
    return load_causal_lm(cfg.base)


def _setup_data(cfg: TrainConfig, tokenizer: Any) -> TrainData:
    """Assistant-only labels, cut to max_seq_len; the hashes that tie checkpoints to this data."""
    train_set, truncated, data_hash = read_chat(cfg.data, tokenizer, cfg.max_seq_len)
    val_set: list[EncodedChat] = []
    if cfg.validation:
        val_set, _, val_hash = read_chat(cfg.validation, tokenizer, cfg.max_seq_len)
        data_hash = hashlib.sha256((data_hash + val_hash).encode()).hexdigest()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return TrainData(
        train=train_set, validation=val_set, truncated=truncated, sha256=data_hash,
        fingerprint=cfg.fingerprint(data_hash),
        build_record=_build_record(cfg.data),  # read now: a bad file fails before training, not after
        pad_id=pad_id,
    )


def _setup_lora(cfg: TrainConfig, model: Any, runtime: Runtime) -> Any:
    """The base model frozen (in bf16 when training in bf16), LoRA layers added, on the device."""
    from peft import LoraConfig, get_peft_model

    model.config.use_cache = False
    if runtime.precision == "bf16" and not cfg.qlora:
        model.to(torch.bfloat16)  # frozen base in bf16; peft keeps the adapter weights in fp32
    model = get_peft_model(
        model,
        LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.target_modules),
            layers_to_transform=_top_layers(model, cfg.top_layers),
            task_type="CAUSAL_LM",
        ),
    )
    if not cfg.qlora:
        model.to(runtime.device)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    return model


def _setup_optimizer(cfg: TrainConfig, model: Any, runtime: Runtime, n_examples: int) -> Optimization:
    """AdamW (fused on CUDA) and a cosine schedule with warm-up over all epochs; `max_steps`
    stops the run early without changing the schedule, so a short run is a prefix of a long one."""
    from transformers import get_cosine_schedule_with_warmup

    steps_per_epoch = len(epoch_batches(n_examples, cfg.batch_size, seed=cfg.seed, epoch=0,
                                        rank=runtime.rank, world=runtime.world))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=runtime.device.type == "cuda"
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(cfg.warmup_ratio * cfg.epochs * steps_per_epoch), cfg.epochs * steps_per_epoch
    )
    return Optimization(optimizer, scheduler, trainable, steps_per_epoch, total_steps)


def _resume(
    cfg: TrainConfig, ckpt_dir: Path, fingerprint: str, model: Any, optim: Optimization, device: torch.device
) -> RunState:
    """The newest checkpoint of the same run loaded into the adapter, optimiser, schedule and RNG
    (so the run continues exactly where it stopped); a fresh state when there is none."""
    from peft import set_peft_model_state_dict

    latest = checkpoint.latest(ckpt_dir) if cfg.resume else None
    if latest is None:
        return RunState()
    saved = checkpoint.load(latest)
    if saved["fingerprint"] != fingerprint:
        raise ConfigError(
            f"{Path(cfg.out)} holds checkpoints of a different run (other data or settings): "
            "use another --out, or --no-resume to start over"
        )
    set_peft_model_state_dict(model, saved["adapter"])
    optim.optimizer.load_state_dict(saved["optimizer"])
    optim.scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    if device.type == "cuda" and "cuda_rng" in saved:
        torch.cuda.set_rng_state(saved["cuda_rng"], device)
    return RunState.from_checkpoint(saved)


def read_chat(path: str | Path, tokenizer: Any, max_len: int) -> tuple[list[EncodedChat], int, str]:
    """Encode a chat JSONL file; refuses files `tune validate` would flag with errors.
    Returns (examples, how many were truncated, sha256 of the file)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give chat JSONL (see `ragortune tune build`)")
    raw = path.read_bytes()
    examples: list[EncodedChat] = []
    truncated = 0
    for n, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        problems = check_example(record, n) if record is not None else []
        if record is None or problems:
            what = problems[0].message if problems else "not valid JSON"
            raise InputError(
                f"{path}:{n}: {what}; run `ragortune tune validate {path}` to see every problem"
            )
        encoded = encode_chat(tokenizer, record["messages"], max_tokens=max_len)
        truncated += encoded.truncated
        if encoded.n_target:  # an example cut before its reply teaches nothing
            examples.append(encoded)
    if not examples:
        raise InputError(f"{path}: no trainable examples (each needs an assistant reply)")
    return examples, truncated, hashlib.sha256(raw).hexdigest()


# ---- one step of the loop ------------------------------------------------------------------------------
def _masked_logits_supported() -> bool:
    """transformers >= 5.2x slices hidden states by a boolean `logits_to_keep` mask before the
    vocabulary projection; older versions get full logits and we select rows afterwards."""
    import transformers.modeling_utils as mu

    return hasattr(mu, "slice_logits_to_keep")


_MASKED_LOGITS = _masked_logits_supported()


def _forward(model: Any, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits only where a label is predicted (`logits_to_keep` mask): on chat data most tokens
    are prompt, and projecting them onto the vocabulary would be wasted work and memory."""
    labels = batch.labels.to(device)
    shifted = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = shifted != IGNORE
    out = model(
        input_ids=batch.input_ids.to(device),
        position_ids=batch.position_ids.to(device),
        logits_to_keep=keep if _MASKED_LOGITS else 0,
        use_cache=False,
    )
    logits = out.logits if _MASKED_LOGITS else out.logits[keep]
    return logits, shifted[shifted != IGNORE]


def _optimizer_step(
    model: Any, micro: list[Batch], optim: Optimization, runtime: Runtime, max_grad_norm: float
) -> list[torch.Tensor]:
    """Forward and backward over the step's micro-batches, then one optimiser step. Returns each
    micro-batch's share of the step's loss, left on the device (reading it waits for the device)."""
    n_targets = sum(mb.n_targets for mb in micro)
    losses = []
    for k, mb in enumerate(micro):
        last = k == len(micro) - 1  # gradients are all-reduced across processes once, at the last
        with contextlib.nullcontext() if last else runtime.accelerator.no_sync(model), runtime.autocast():
            logits, targets = _forward(model, mb, runtime.device)
            # sum over the step's target tokens, divided once: every token weighs the same
            loss = F.cross_entropy(logits.float(), targets, reduction="sum") / n_targets
        runtime.accelerator.backward(loss)
        losses.append(loss.detach())
    torch.nn.utils.clip_grad_norm_(optim.trainable, max_grad_norm)
    optim.optimizer.step()
    optim.scheduler.step()
    optim.optimizer.zero_grad(set_to_none=True)
    return losses


@torch.no_grad()
def evaluate(
    model: Any, examples: Sequence[EncodedChat], cfg: TrainConfig, pad_id: int, runtime: Runtime
) -> float:
    """Mean loss per target token over the validation examples (no dropout)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), cfg.batch_size):
        ids = list(range(start, min(start + cfg.batch_size, len(examples))))
        batch = pack([examples[i] for i in ids], ids, max_len=cfg.max_seq_len, pad_id=pad_id)
        with runtime.autocast():
            logits, targets = _forward(model, batch, runtime.device)
        total += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        count += int(targets.numel())
    model.train()
    return total / max(count, 1)


def _validate(model: Any, data: TrainData, cfg: TrainConfig, runtime: Runtime, state: RunState) -> float | None:
    """Validation loss at the current step, recorded in the run's state; None without validation data."""
    if not data.validation:
        return None
    loss = evaluate(model, data.validation, cfg, data.pad_id, runtime)
    state.val_losses.append((state.step, loss))
    return loss


def _log_step(
    out: Path, state: RunState, epoch: int, loss: float, lr: float, batch_ids: list[int], runtime: Runtime
) -> None:
    """One line of train_log.jsonl, appended as the step ends (the kill test reads it live)."""
    entry = {"step": state.step, "epoch": epoch, "loss": round(loss, 6), "lr": lr, "tokens": state.tokens,
             "seconds": round(state.train_seconds, 4), "examples": list(batch_ids)}
    state.log.append(entry)
    if runtime.is_main:
        with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def _progress(state: RunState, total_steps: int, epoch: int, val_loss: float | None, lr: float) -> Progress:
    rate = state.tokens / state.train_seconds if state.train_seconds else 0.0
    done = state.step - (state.resumed_from or 0)
    eta = state.train_seconds / done * (total_steps - state.step) if done else 0.0
    loss = state.log[-1]["loss"] if state.log else None
    return Progress(state.step, total_steps, epoch, loss, val_loss, lr, rate, eta)


def _save_checkpoint(
    ckpt_dir: Path, fingerprint: str, model: Any, optim: Optimization, state: RunState, runtime: Runtime
) -> None:
    """Everything `_resume` restores, written atomically by the main process."""
    from peft import get_peft_model_state_dict

    runtime.accelerator.wait_for_everyone()
    if not runtime.is_main:
        return
    saved = {
        "fingerprint": fingerprint,
        "step": state.step,
        "adapter": get_peft_model_state_dict(model),
        "optimizer": optim.optimizer.state_dict(),
        "scheduler": optim.scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "log": state.log,
        "val_losses": state.val_losses,
        "counters": state.counters(),
    }
    if runtime.device.type == "cuda":
        saved["cuda_rng"] = torch.cuda.get_rng_state(runtime.device)
    checkpoint.save(ckpt_dir, state.step, saved)


# ---- the end: adapter, how it was made, optionally merged weights ----------------------------------
def _save_artefacts(
    cfg: TrainConfig, out: Path, model: Any, tokenizer: Any, record: dict[str, Any]
) -> Path | None:
    """The adapter, `ragortune_train.json`, merged weights with --merge; then the checkpoints
    go unless kept. Returns the merged weights' folder, if any."""
    _save_adapter(model, out)
    write_json_atomic(out / RUN_FILE, record, indent=2)
    merged_dir = _save_merged(model, tokenizer, out / "merged") if cfg.merge else None
    if not cfg.keep_checkpoints:
        checkpoint.clear(out / "checkpoints")
    return merged_dir


def _run_record(
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
        "versions": _versions(),
        "host": platform.node(),
    }


def _save_merged(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Base and adapter folded into plain weights that load without peft."""
    merged = model.merge_and_unload()
    if hasattr(merged.config, "quantization_config"):
        del merged.config.quantization_config  # a GGUF-loaded model refuses to save otherwise
    if getattr(merged, "hf_quantizer", None) is not None:
        merged.hf_quantizer = None  # the weights are plain floats after dequantising
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _save_adapter(model: Any, out: Path) -> None:
    """peft's adapter files, written beside each other in a temp folder then moved into `out`."""
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".adapter-"))
    try:
        model.save_pretrained(tmp)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _result(
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


# ---- small pieces ---------------------------------------------------------------------------------------
def _load_4bit(base: str | None, device: torch.device) -> tuple[Any, Any]:
    """QLoRA: base weights in 4-bit NF4 (bitsandbytes, CUDA only), adapters in full precision."""
    if device.type != "cuda":
        raise ConfigError("--qlora needs a CUDA GPU; drop --qlora to train in full precision")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ConfigError("--qlora needs bitsandbytes: `pip install bitsandbytes`") from exc
    if base is None or base == "smollm2" or str(base).endswith(".gguf"):
        raise ConfigError("--qlora needs a safetensors model (a Hugging Face id or folder), not GGUF")
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from ragortune.tune.tokens import load_tokenizer

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )
    local = Path(base).expanduser().is_dir()
    model = AutoModelForCausalLM.from_pretrained(
        base, quantization_config=quant, dtype=torch.bfloat16, device_map={"": device.index or 0},
        local_files_only=not local,
    )
    return load_tokenizer(base), prepare_model_for_kbit_training(model)


def _top_layers(model: Any, n: int | None) -> list[int] | None:
    """Indices of the last `n` decoder layers, for peft's `layers_to_transform`."""
    if n is None:
        return None
    total = model.config.num_hidden_layers
    if not 1 <= n <= total:
        raise ConfigError(f"--top-layers {n}: this model has {total} decoder layers; "
                          f"give 1 to {total}, or leave it out to adapt them all")
    return list(range(total - n, total))


def _peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda max_memory_allocated"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "process peak RSS"


def _build_record(data: str) -> dict[str, Any] | None:
    """`tune build`'s record beside the training file, kept in the adapter's own record so the
    adapter says how its data was made (and `retrain` can make new data the same way)."""
    from ragortune.tune.dataset import BUILD_FILE

    path = Path(data).parent / BUILD_FILE
    if not path.is_file():
        return None
    return read_json(path, "run `ragortune tune build` again, or delete the file")


def _versions() -> dict[str, str]:
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
