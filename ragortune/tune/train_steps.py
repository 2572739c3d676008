"""The building blocks of the LoRA recipe (`tune.train.train`), in the order it calls them:
setup steps that each return one object (runtime, base model, data, LoRA layers, optimiser and
schedule, resumed state), then the pieces of one loop iteration (forward on labelled positions
only, optimiser step over micro-batches, validation, the log line, the checkpoint)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ragortune.errors import ConfigError, InputError
from ragortune.io import read_json
from ragortune.models import load_causal_lm
from ragortune.tune import checkpoint
from ragortune.tune.packing import IGNORE, Batch, epoch_batches, pack
from ragortune.tune.tokens import EncodedChat, encode_chat
from ragortune.tune.train_config import LOG_FILE, Progress, TrainConfig
from ragortune.tune.validate import check_example

# transformers 5 warns on every run that peft reads a renamed property; it is noise to a user.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.* is deprecated",
                        category=FutureWarning)


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


# ---- setup steps, in the order train() calls them ----------------------------------------------
def setup_runtime(cfg: TrainConfig) -> Runtime:
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


def load_base(cfg: TrainConfig, device: torch.device) -> tuple[Any, Any]:
    """(tokenizer, model): 4-bit base weights for QLoRA, else whatever `models.load_causal_lm`
    loads (the shipped SmolLM2, a Hugging Face id, a local folder or .gguf)."""
    if cfg.qlora:
        return load_4bit(cfg.base, device)
    return load_causal_lm(cfg.base)


def setup_data(cfg: TrainConfig, tokenizer: Any) -> TrainData:
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
        build_record=read_build_record(cfg.data),  # read now: a bad file fails before training, not after
        pad_id=pad_id,
    )


def setup_lora(cfg: TrainConfig, model: Any, runtime: Runtime) -> Any:
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
            layers_to_transform=top_layer_indices(model, cfg.top_layers),
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


def setup_optimizer(cfg: TrainConfig, model: Any, runtime: Runtime, n_examples: int) -> Optimization:
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


def resume_state(
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


def load_4bit(base: str | None, device: torch.device) -> tuple[Any, Any]:
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


def top_layer_indices(model: Any, n: int | None) -> list[int] | None:
    """Indices of the last `n` decoder layers, for peft's `layers_to_transform`."""
    if n is None:
        return None
    total = model.config.num_hidden_layers
    if not 1 <= n <= total:
        raise ConfigError(f"--top-layers {n}: this model has {total} decoder layers; "
                          f"give 1 to {total}, or leave it out to adapt them all")
    return list(range(total - n, total))


def read_build_record(data: str) -> dict[str, Any] | None:
    """`tune build`'s record beside the training file, kept in the adapter's own record so the
    adapter says how its data was made (and `retrain` can make new data the same way)."""
    from ragortune.tune.dataset import BUILD_FILE

    path = Path(data).parent / BUILD_FILE
    if not path.is_file():
        return None
    return read_json(path, "run `ragortune tune build` again, or delete the file")


# ---- one step of the loop ------------------------------------------------------------------------------
def _masked_logits_supported() -> bool:
    """transformers >= 5.2x slices hidden states by a boolean `logits_to_keep` mask before the
    vocabulary projection; older versions get full logits and we select rows afterwards."""
    import transformers.modeling_utils as mu

    return hasattr(mu, "slice_logits_to_keep")


_MASKED_LOGITS = _masked_logits_supported()


def forward(model: Any, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
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


def optimizer_step(
    model: Any, micro: list[Batch], optim: Optimization, runtime: Runtime, max_grad_norm: float
) -> list[torch.Tensor]:
    """Forward and backward over the step's micro-batches, then one optimiser step. Returns each
    micro-batch's share of the step's loss, left on the device (reading it waits for the device)."""
    n_targets = sum(mb.n_targets for mb in micro)
    losses = []
    for k, mb in enumerate(micro):
        last = k == len(micro) - 1  # gradients are all-reduced across processes once, at the last
        with contextlib.nullcontext() if last else runtime.accelerator.no_sync(model), runtime.autocast():
            logits, targets = forward(model, mb, runtime.device)
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
            logits, targets = forward(model, batch, runtime.device)
        total += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        count += int(targets.numel())
    model.train()
    return total / max(count, 1)


def record_validation(model: Any, data: TrainData, cfg: TrainConfig, runtime: Runtime, state: RunState) -> float | None:
    """Validation loss at the current step, recorded in the run's state; None without validation data."""
    if not data.validation:
        return None
    loss = evaluate(model, data.validation, cfg, data.pad_id, runtime)
    state.val_losses.append((state.step, loss))
    return loss


def log_step(
    out: Path, state: RunState, epoch: int, loss: float, lr: float, batch_ids: list[int], runtime: Runtime
) -> None:
    """One line of train_log.jsonl, appended as the step ends (the kill test reads it live)."""
    entry = {"step": state.step, "epoch": epoch, "loss": round(loss, 6), "lr": lr, "tokens": state.tokens,
             "seconds": round(state.train_seconds, 4), "examples": list(batch_ids)}
    state.log.append(entry)
    if runtime.is_main:
        with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def progress_of(state: RunState, total_steps: int, epoch: int, val_loss: float | None, lr: float) -> Progress:
    rate = state.tokens / state.train_seconds if state.train_seconds else 0.0
    done = state.step - (state.resumed_from or 0)
    eta = state.train_seconds / done * (total_steps - state.step) if done else 0.0
    loss = state.log[-1]["loss"] if state.log else None
    return Progress(state.step, total_steps, epoch, loss, val_loss, lr, rate, eta)


def save_checkpoint(
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
