"""LoRA fine-tuning recipe: one function, read top to bottom — setup, data, model, optimiser,
resume, loop (forward, backward, step, validate, checkpoint), save.

Runs on CPU, on one GPU, and on several GPUs when started with `accelerate launch`. The
building blocks live beside it: `tokens.encode_chat` (labels on assistant replies only),
`packing` (reproducible data order, packed rows) and `checkpoint` (atomic writes).
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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ragortune.errors import ConfigError, InputError
from ragortune.tune import checkpoint
from ragortune.tune.packing import IGNORE, Batch, epoch_batches, pack, split_micro
from ragortune.tune.tokens import EncodedChat, encode_chat
from ragortune.tune.validate import check_example

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


@torch.no_grad()
def evaluate(
    model: Any, examples: Sequence[EncodedChat], cfg: TrainConfig, pad_id: int, device: torch.device,
    autocast: Callable[[], Any],
) -> float:
    """Mean loss per target token over the validation examples (no dropout)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), cfg.batch_size):
        ids = list(range(start, min(start + cfg.batch_size, len(examples))))
        batch = pack([examples[i] for i in ids], ids, max_len=cfg.max_seq_len, pad_id=pad_id)
        with autocast():
            logits, targets = _forward(model, batch, device)
        total += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        count += int(targets.numel())
    model.train()
    return total / max(count, 1)


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


def _peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda max_memory_allocated"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "process peak RSS"


def _top_layers(model: Any, n: int | None) -> list[int] | None:
    """Indices of the last `n` decoder layers, for peft's `layers_to_transform`."""
    if n is None:
        return None
    total = model.config.num_hidden_layers
    if not 1 <= n <= total:
        raise ConfigError(f"--top-layers {n}: this model has {total} decoder layers; "
                          f"give 1 to {total}, or leave it out to adapt them all")
    return list(range(total - n, total))


def _save_adapter(model: Any, out: Path) -> None:
    """peft's adapter files, written beside each other in a temp folder then moved into `out`."""
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".adapter-"))
    try:
        model.save_pretrained(tmp)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    from accelerate import Accelerator
    from peft import (
        LoraConfig,
        get_peft_model,
        get_peft_model_state_dict,
        set_peft_model_state_dict,
    )
    from transformers import get_cosine_schedule_with_warmup

    # --- setup: device, precision, seed --------------------------------------------------------
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is visible; use --device cpu")
    accelerator = Accelerator(cpu=cfg.device == "cpu")
    device = accelerator.device
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"--precision must be auto, fp32 or bf16, not {cfg.precision!r}")
    if cfg.qlora and cfg.merge:
        raise ConfigError("--merge cannot fold an adapter into 4-bit weights: drop --merge or --qlora")

    def autocast() -> Any:
        if precision == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    checkpoint.discard_partial(ckpt_dir)

    # --- model and tokenizer ----------------------------------------------------------------------
    if model is None:
        if cfg.qlora:
            tokenizer, model = _load_4bit(cfg.base, device)
        else:
            from ragortune.models import load_causal_lm

            tokenizer, model = load_causal_lm(cfg.base)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # --- data: assistant-only labels, cut to max_seq_len ------------------------------------------
    train_set, truncated, data_hash = read_chat(cfg.data, tokenizer, cfg.max_seq_len)
    val_set: list[EncodedChat] = []
    if cfg.validation:
        val_set, _, val_hash = read_chat(cfg.validation, tokenizer, cfg.max_seq_len)
        data_hash = hashlib.sha256((data_hash + val_hash).encode()).hexdigest()
    fingerprint = cfg.fingerprint(data_hash)
    build_record = _build_record(cfg.data)  # read now: a bad file fails before training, not after

    # --- LoRA ----------------------------------------------------------------------------------------
    model.config.use_cache = False
    if precision == "bf16" and not cfg.qlora:
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
        model.to(device)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    peft_model = model  # kept for saving and loading adapter weights, whatever wraps it below

    # --- optimiser and schedule ----------------------------------------------------------------------
    world, rank = accelerator.num_processes, accelerator.process_index
    steps_per_epoch = len(epoch_batches(len(train_set), cfg.batch_size, seed=cfg.seed, epoch=0,
                                        rank=rank, world=world))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type == "cuda"
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(cfg.warmup_ratio * cfg.epochs * steps_per_epoch), cfg.epochs * steps_per_epoch
    )

    # --- resume from the newest checkpoint of the same run ---------------------------------------------
    step, log, val_losses, resumed_from = 0, [], [], None
    tokens_seen, target_seen, train_seconds, cpu_seconds = 0, 0, 0.0, 0.0
    latest = checkpoint.latest(ckpt_dir) if cfg.resume else None
    if latest is not None:
        state = checkpoint.load(latest)
        if state["fingerprint"] != fingerprint:
            raise ConfigError(
                f"{out} holds checkpoints of a different run (other data or settings): "
                "use another --out, or --no-resume to start over"
            )
        set_peft_model_state_dict(peft_model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step, log, val_losses = state["step"], state["log"], [tuple(v) for v in state["val_losses"]]
        tokens_seen, target_seen, train_seconds = state["counters"][:3]
        cpu_seconds = state["counters"][3] if len(state["counters"]) > 3 else 0.0
        resumed_from = step
    with open(out / LOG_FILE, "w", encoding="utf-8") as fh:  # drops lines written after that checkpoint
        fh.writelines(json.dumps(entry) + "\n" for entry in log)

    model, optimizer = accelerator.prepare(model, optimizer)  # DDP across GPUs; a no-op on one device
    if cfg.compile:
        model = torch.compile(model, dynamic=True)

    def save_checkpoint() -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            state = {
                "fingerprint": fingerprint,
                "step": step,
                "adapter": get_peft_model_state_dict(peft_model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "log": log,
                "val_losses": val_losses,
                "counters": [tokens_seen, target_seen, train_seconds, cpu_seconds],
            }
            if device.type == "cuda":
                state["cuda_rng"] = torch.cuda.get_rng_state(device)
            checkpoint.save(ckpt_dir, step, state)

    def validate_now() -> float | None:
        if not val_set:
            return None
        loss = evaluate(model, val_set, cfg, pad_id, device, autocast)
        val_losses.append((step, loss))
        return loss

    # --- the loop ----------------------------------------------------------------------------------------
    running = torch.zeros((), device=device)  # summed on the device: no sync until we log
    since_log = 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if resumed_from is None:
        validate_now()  # the base model's validation loss: where the curve starts
    start_epoch = step // steps_per_epoch if steps_per_epoch else 0
    for epoch in range(start_epoch, cfg.epochs):
        batches = epoch_batches(len(train_set), cfg.batch_size, seed=cfg.seed, epoch=epoch,
                                rank=rank, world=world)
        for index, batch_ids in enumerate(batches):
            if epoch * steps_per_epoch + index < step:
                continue  # trained before the resume: same order, so skipping is exact
            if step >= total_steps:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            micro = [
                pack([train_set[i] for i in ids], ids, max_len=cfg.max_seq_len, pad_id=pad_id)
                for ids in split_micro(batch_ids, cfg.grad_accum)
            ]
            n_targets = sum(mb.n_targets for mb in micro)
            for k, mb in enumerate(micro):
                last = k == len(micro) - 1
                with contextlib.nullcontext() if last else accelerator.no_sync(model), autocast():
                    logits, targets = _forward(model, mb, device)
                    # sum over the step's target tokens, divided once: every token weighs the same
                    loss = F.cross_entropy(logits.float(), targets, reduction="sum") / n_targets
                accelerator.backward(loss)
                running += loss.detach()
            torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += sum(mb.n_tokens for mb in micro) * world
            target_seen += n_targets * world
            since_log += 1

            if step % cfg.log_every == 0 or step == total_steps:
                loss_value = float(running) / since_log
                running.zero_()
                since_log = 0
                train_seconds += time.perf_counter() - t0
                cpu_seconds += time.process_time() - c0
                entry = {"step": step, "epoch": epoch, "loss": round(loss_value, 6),
                         "lr": scheduler.get_last_lr()[0], "tokens": tokens_seen,
                         "seconds": round(train_seconds, 4), "examples": list(batch_ids)}
                log.append(entry)
                if accelerator.is_main_process:
                    with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(entry) + "\n")
            else:
                train_seconds += time.perf_counter() - t0
                cpu_seconds += time.process_time() - c0
            end_of_epoch = index == len(batches) - 1
            val_loss = None
            if (cfg.eval_every and step % cfg.eval_every == 0) or end_of_epoch or step == total_steps:
                val_loss = validate_now()
            if on_progress and (step % cfg.log_every == 0 or val_loss is not None):
                rate = tokens_seen / train_seconds if train_seconds else 0.0
                done = step - (resumed_from or 0)
                eta = train_seconds / done * (total_steps - step) if done else 0.0
                on_progress(Progress(step, total_steps, epoch, log[-1]["loss"] if log else None,
                                     val_loss, scheduler.get_last_lr()[0], rate, eta))
            if step % cfg.checkpoint_every == 0 or end_of_epoch or step == total_steps:
                save_checkpoint()
        if step >= total_steps:
            break

    # --- save: adapter, how it was made, optionally merged weights ------------------------------------
    accelerator.wait_for_everyone()
    peak, peak_kind = _peak_memory(device)
    merged_dir = None
    if accelerator.is_main_process:
        _save_adapter(peft_model, out)
        tokens_per_s = tokens_seen / train_seconds if train_seconds else 0.0
        losses = [e["loss"] for e in log]
        record = {
            "base_model": cfg.base or "smollm2",
            "data_sha256": data_hash,
            "dataset_build": build_record,
            "config": asdict(cfg),
            "steps": step,
            "examples": len(train_set),
            "truncated": truncated,
            "tokens": tokens_seen,
            "target_tokens": target_seen,
            "train_seconds": round(train_seconds, 3),
            "cpu_seconds": round(cpu_seconds, 3),
            "tokens_per_s": round(tokens_per_s, 1),
            "peak_memory_bytes": peak,
            "peak_memory_kind": peak_kind,
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
            "val_losses": val_losses,
            "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
            "processes": world,
            "precision": precision,
            "resumed_from_step": resumed_from,
            "versions": _versions(),
            "host": platform.node(),
        }
        (out / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if cfg.merge:
            merged_dir = out / "merged"
            merged = peft_model.merge_and_unload()
            if hasattr(merged.config, "quantization_config"):
                del merged.config.quantization_config  # a GGUF-loaded model refuses to save otherwise
            if getattr(merged, "hf_quantizer", None) is not None:
                merged.hf_quantizer = None  # the weights are plain floats after dequantising
            merged.save_pretrained(merged_dir)
            tokenizer.save_pretrained(merged_dir)
        if not cfg.keep_checkpoints:
            checkpoint.clear(ckpt_dir)
    losses = [e["loss"] for e in log]
    return TrainResult(
        out=str(out),
        adapter=str(out),
        merged=str(merged_dir) if merged_dir else None,
        steps=step,
        total_steps=total_steps,
        epochs=cfg.epochs,
        examples=len(train_set),
        truncated=truncated,
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
        val_losses=val_losses,
        tokens=tokens_seen,
        target_tokens=target_seen,
        train_seconds=round(train_seconds, 3),
        tokens_per_s=round(tokens_seen / train_seconds, 1) if train_seconds else 0.0,
        peak_memory_bytes=peak,
        peak_memory_kind=peak_kind,
        device=str(device),
        precision=precision,
        resumed_from_step=resumed_from,
        cpu_seconds=round(cpu_seconds, 3),
        log=log,
    )


def _build_record(data: str) -> dict[str, Any] | None:
    """`tune build`'s record beside the training file, kept in the adapter's own record so the
    adapter says how its data was made (and `retrain` can make new data the same way)."""
    from ragortune.tune.dataset import BUILD_FILE

    path = Path(data).parent / BUILD_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}); run `ragortune tune build` "
                         "again, or delete the file") from exc


def _versions() -> dict[str, str]:
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
