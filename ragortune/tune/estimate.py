"""What a fine-tuning job will bill: tokens x epochs under the provider's rule, times the price.

The price per million training tokens is passed in: the CLI reads it from the price book
(`ragortune.cost.prices`, a later stage this module does not import) or from `--price-per-m`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragortune.tune.tokens import billed_tokens, default_epochs


@dataclass(frozen=True)
class TrainingEstimate:
    """The bill for one training job before it is started."""

    model: str
    n_examples: int
    n_epochs: int
    epochs_rule: str  # "requested" or "openai-default" (3 epochs, 100..25,000 example passes)
    tokens_per_epoch: int
    billed_tokens: int
    price_per_million: float | None
    cost_usd: float | None
    price_source: str | None


def estimate_training(
    tokens_per_example: Sequence[int],
    *,
    model: str,
    max_tokens: int,
    epochs: int | None = None,
    price_per_million: float | None = None,
    price_source: str | None = None,
) -> TrainingEstimate:
    """Billed tokens and cost. Without `epochs` the provider's default rule picks them; without
    a price the cost is None (local models, or a model the price book does not carry)."""
    n = len(tokens_per_example)
    n_epochs = epochs if epochs is not None else default_epochs(n)
    per_epoch = billed_tokens(tokens_per_example, 1, max_tokens)
    billed = per_epoch * n_epochs
    cost = None if price_per_million is None else round(billed * price_per_million / 1e6, 6)
    return TrainingEstimate(
        model=model,
        n_examples=n,
        n_epochs=n_epochs,
        epochs_rule="requested" if epochs is not None else "openai-default",
        tokens_per_epoch=per_epoch,
        billed_tokens=billed,
        price_per_million=price_per_million,
        cost_usd=cost,
        price_source=price_source if price_per_million is not None else None,
    )
