"""What a fine-tuning job will bill: tokens x epochs under the provider's rule, times the price.

Training prices come from the price book (`ragortune.cost.prices`, a packaged data file with
user overrides); a caller may pass a price per million tokens instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragortune.tune.tokens import billed_tokens, default_epochs, openai_base_model


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


def training_price(model: str) -> tuple[float, str] | None:
    """($ per million training tokens, where the figure comes from) from the price book, or None
    when the book has no training price for this model (local models, unknown providers)."""
    try:
        from ragortune.cost import prices
    except ImportError:  # the price book is an optional stage for the estimate
        return None
    lookup = getattr(prices, "training_price", None)
    if lookup is None:
        return None
    found = lookup(openai_base_model(model))
    if found is None:
        return None
    if isinstance(found, tuple):
        return float(found[0]), str(found[1])
    return float(getattr(found, "train_mtok", found)), str(getattr(found, "source", "price book"))


def estimate_training(
    tokens_per_example: Sequence[int],
    *,
    model: str,
    max_tokens: int,
    epochs: int | None = None,
    price_per_million: float | None = None,
) -> TrainingEstimate:
    """Billed tokens and cost. Without `epochs` the provider's default rule picks them; without
    `price_per_million` the price book is asked (cost None when it has no price)."""
    n = len(tokens_per_example)
    n_epochs = epochs if epochs is not None else default_epochs(n)
    per_epoch = billed_tokens(tokens_per_example, 1, max_tokens)
    billed = per_epoch * n_epochs
    source: str | None = "given" if price_per_million is not None else None
    if price_per_million is None:
        found = training_price(model)
        if found is not None:
            price_per_million, source = found
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
        price_source=source,
    )
