"""Batches for training: a data order reproducible from (seed, epoch), and packing of short chat
examples into rows so a step spends its compute on tokens rather than on padding.

A packed row holds several examples back to back; each restarts its `position_ids` at 0, which
transformers turns into a block-diagonal causal mask (no example attends to another), and the
first token of each example carries no label (nothing predicts across an example boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ragortune.tune.tokens import EncodedChat

IGNORE = -100


@dataclass(frozen=True)
class Batch:
    """Tensors for one forward pass plus what was in it (example indices, real token count)."""

    input_ids: torch.Tensor  # (rows, length)
    labels: torch.Tensor
    position_ids: torch.Tensor
    example_ids: tuple[int, ...]
    n_tokens: int  # real tokens, padding excluded
    n_targets: int  # tokens with a label (the loss is a mean over these)


def epoch_order(n_examples: int, *, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch; the same (seed, epoch) always gives the same order, which
    is what lets a killed run resume mid-epoch on exactly the batches it would have seen."""
    rng = np.random.default_rng([seed, epoch])
    return [int(i) for i in rng.permutation(n_examples)]


def epoch_batches(
    n_examples: int, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """This process's batches of example indices for one epoch. With several processes the
    batch list is wrapped around to a multiple of `world`, so every process takes the same
    number of steps (data parallel training hangs otherwise)."""
    order = epoch_order(n_examples, seed=seed, epoch=epoch)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if world > 1 and len(batches) % world:
        batches += batches[: world - len(batches) % world]
    return batches[rank::world]


def pack(
    examples: Sequence[EncodedChat],
    example_ids: Sequence[int],
    *,
    max_len: int,
    pad_id: int,
    pad_multiple: int = 8,
) -> Batch:
    """Pack examples, in order, into as few rows of at most `max_len` tokens as fit; pad the rows
    to a common length (a multiple of `pad_multiple`, kinder to GPU kernels)."""
    rows: list[list[int]] = [[]]
    for i, ex in enumerate(examples):
        if rows[-1] and sum(len(examples[j].input_ids) for j in rows[-1]) + len(ex.input_ids) > max_len:
            rows.append([])
        rows[-1].append(i)
    lengths = [sum(len(examples[j].input_ids) for j in row) for row in rows]
    width = -(-max(lengths) // pad_multiple) * pad_multiple
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for j in row:
            ex = examples[j]
            n = len(ex.input_ids)
            input_ids[r, at : at + n] = torch.tensor(ex.input_ids)
            labels[r, at : at + n] = torch.tensor(ex.labels)
            labels[r, at] = IGNORE
            position_ids[r, at : at + n] = torch.arange(n)
            at += n
        # the padding forms its own short "sequence" so no real token attends to it
        position_ids[r, at:] = torch.arange(width - at)
    return Batch(
        input_ids=input_ids,
        labels=labels,
        position_ids=position_ids,
        example_ids=tuple(example_ids),
        n_tokens=sum(lengths),
        n_targets=int((labels[:, 1:] != IGNORE).sum()),
    )


def split_micro(batch_ids: list[int], parts: int) -> list[list[int]]:
    """Split a step's examples into `parts` micro-batches for gradient accumulation."""
    parts = max(1, min(parts, len(batch_ids)))
    size = -(-len(batch_ids) // parts)
    return [batch_ids[i : i + size] for i in range(0, len(batch_ids), size)]
