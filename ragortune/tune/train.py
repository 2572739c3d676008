"""LoRA fine-tuning recipe, read top to bottom as torchtune's recipes are: `train()` calls one
setup step per part (runtime, base model, data, LoRA, optimiser and schedule, resume state),
then runs a short loop (forward, backward, step, log, validate, checkpoint) and saves.

What it keeps: a killed run resumes exactly mid-epoch (same batches, same losses; the kill -9
test), the loss of a step is weighted by token across its micro-batches, and logits are
projected onto the vocabulary only where there is a label. The building blocks live beside
it: `train_config` (what a run takes, reports and returns), `train_steps` (each setup step
and each piece of the loop), `train_artefacts` (the adapter, its record, merged weights),
`tokens.encode_chat` (labels on assistant replies only), `packing` (reproducible data order,
packed rows) and `checkpoint` (atomic checkpoint folders).

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

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ragortune.io import write_jsonl_atomic
from ragortune.tune import checkpoint
from ragortune.tune.packing import epoch_batches, pack, split_micro
from ragortune.tune.train_artefacts import peak_memory, result_of, run_record, save_artefacts
from ragortune.tune.train_config import (
    ATTENTION,
    LOG_FILE,
    RUN_FILE,
    Progress,
    TrainConfig,
    TrainResult,
)
from ragortune.tune.train_steps import (
    LossMeter,
    evaluate,
    load_base,
    log_step,
    optimizer_step,
    progress_of,
    read_chat,
    record_validation,
    resume_state,
    save_checkpoint,
    setup_data,
    setup_lora,
    setup_optimizer,
    setup_runtime,
)

__all__ = ["ATTENTION", "LOG_FILE", "RUN_FILE", "Progress", "TrainConfig", "TrainResult",
           "evaluate", "read_chat", "train"]


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
    runtime = setup_runtime(cfg)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    checkpoint.discard_partial(ckpt_dir)
    if model is None:
        tokenizer, model = load_base(cfg, runtime.device)
    data = setup_data(cfg, tokenizer)  # before LoRA: a bad file fails before the model is touched
    peft_model = setup_lora(cfg, model, runtime)  # kept for saving: whatever wraps it below
    optim = setup_optimizer(cfg, peft_model, runtime, len(data.train))
    state = resume_state(cfg, ckpt_dir, data.fingerprint, peft_model, optim, runtime.device)
    write_jsonl_atomic(out / LOG_FILE, state.log)  # drops lines written after that checkpoint
    model, optimizer = runtime.accelerator.prepare(peft_model, optim.optimizer)  # DDP; no-op on one device
    optim = replace(optim, optimizer=optimizer)
    if cfg.compile:
        model = torch.compile(model, dynamic=True)

    meter = LossMeter(torch.zeros((), device=runtime.device))
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    if state.resumed_from is None:
        record_validation(model, data, cfg, runtime, state)  # the base model's loss: where the curve starts
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
            meter.add(optimizer_step(model, micro, optim, runtime, cfg.max_grad_norm))
            state.step += 1
            state.tokens += sum(mb.n_tokens for mb in micro) * runtime.world
            state.target_tokens += sum(mb.n_targets for mb in micro) * runtime.world
            last_step = state.step == optim.total_steps
            loss = meter.take() if state.step % cfg.log_every == 0 or last_step else None
            state.train_seconds += time.perf_counter() - t0  # after reading the loss: the sync counts
            state.cpu_seconds += time.process_time() - c0
            lr = optim.scheduler.get_last_lr()[0]
            if loss is not None:
                log_step(out, state, epoch, loss, lr, batch_ids, runtime)
            end_of_epoch = index == len(batches) - 1
            val_loss = None
            if (cfg.eval_every and state.step % cfg.eval_every == 0) or end_of_epoch or last_step:
                val_loss = record_validation(model, data, cfg, runtime, state)
            if on_progress and (state.step % cfg.log_every == 0 or val_loss is not None):
                on_progress(progress_of(state, optim.total_steps, epoch, val_loss, lr))
            if state.step % cfg.checkpoint_every == 0 or end_of_epoch or last_step:
                save_checkpoint(ckpt_dir, data.fingerprint, peft_model, optim, state, runtime)
        if state.step >= optim.total_steps:
            break

    runtime.accelerator.wait_for_everyone()
    record = run_record(cfg, data, state, runtime, peak_memory(runtime.device))
    merged = save_artefacts(cfg, out, peft_model, tokenizer, record) if runtime.is_main else None
    return result_of(cfg, out, merged, record, optim.total_steps, state, runtime)
