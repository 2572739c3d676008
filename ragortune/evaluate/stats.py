"""Uncertainty and significance for evaluation figures.

Every figure the evidence reports comes with `n` and a 95% interval: Wilson for proportions
(accuracy, stale rate, abstention), a seeded bootstrap for means and ranking metrics
(nDCG@10, F1). Two arms asked the same questions are compared with a paired test: exact
McNemar for right/wrong outcomes, a paired bootstrap for continuous per-question scores.
Seeded splits (halves, k folds) let a tuned setting be chosen on one part and reported on
the other. Everything is plain functions over numpy arrays; scipy does the numerics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _sp

CONFIDENCE = 0.95
ALPHA = 0.05
N_RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A figure with its sample size and a two-sided interval at `confidence`."""

    value: float
    n: int
    low: float
    high: float
    method: str
    confidence: float = CONFIDENCE


@dataclass(frozen=True)
class PairedTest:
    """Arm `a` against arm `b` on the same `n` questions: `diff` = a - b with its interval,
    the two-sided `p_value`, and whether the difference is significant at `alpha`.
    For McNemar, `a_only`/`b_only` count the discordant questions (only a right, only b right)."""

    a: str
    b: str
    n: int
    diff: float
    low: float
    high: float
    p_value: float
    method: str
    alpha: float = ALPHA
    a_only: int | None = None
    b_only: int | None = None

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def wilson(successes: int, n: int, *, confidence: float = CONFIDENCE) -> Estimate:
    """Wilson score interval for a proportion: honest at small n and at 0 or n successes,
    where the normal (Wald) interval collapses to a point. n = 0 gives NaN (no figure)."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Estimate(float("nan"), 0, float("nan"), float("nan"), "wilson", confidence)
    ci = _sp.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(successes / n, n, float(ci.low), float(ci.high), "wilson", confidence)


def proportion(outcomes: Sequence[bool] | np.ndarray, *, confidence: float = CONFIDENCE) -> Estimate:
    """Share of true outcomes with its Wilson interval."""
    arr = np.asarray(outcomes, dtype=bool)
    return wilson(int(arr.sum()), int(arr.size), confidence=confidence)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Mean with a seeded percentile-bootstrap interval (per-query nDCG@10, recall, F1).
    Percentile rather than BCa because BCa is undefined when every value is equal, which
    happens for small perfect or empty runs; same seed, same interval."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return Estimate(float("nan"), 0, float("nan"), float("nan"), "bootstrap", confidence)
    mean = float(arr.mean())
    if arr.size == 1 or np.all(arr == arr[0]):
        return Estimate(mean, int(arr.size), mean, mean, "bootstrap", confidence)
    res = _sp.bootstrap(
        (arr,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
        method="percentile", vectorized=True, rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Estimate(mean, int(arr.size), float(ci.low), float(ci.high), "bootstrap", confidence)


def mcnemar(
    a_correct: Sequence[bool] | np.ndarray,
    b_correct: Sequence[bool] | np.ndarray,
    *,
    a: str = "a",
    b: str = "b",
    alpha: float = ALPHA,
    seed: int = 0,
) -> PairedTest:
    """Exact McNemar test of two arms' right/wrong outcomes on the same questions: a binomial
    test on the discordant pairs (the questions only one arm got right). The interval on the
    accuracy difference is a paired bootstrap. No discordant pair means no evidence of a
    difference (p = 1)."""
    x = np.asarray(a_correct, dtype=bool)
    y = np.asarray(b_correct, dtype=bool)
    if x.shape != y.shape:
        raise ValueError(f"paired outcomes need the same questions: {x.size} vs {y.size}")
    a_only = int((x & ~y).sum())
    b_only = int((~x & y).sum())
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(_sp.binomtest(a_only, discordant, 0.5).pvalue)
    diff = bootstrap_mean(x.astype(float) - y.astype(float), seed=seed)
    return PairedTest(a, b, int(x.size), diff.value, diff.low, diff.high, min(p, 1.0),
                      "mcnemar-exact", alpha, a_only, b_only)


def paired_bootstrap(
    a_scores: Sequence[float] | np.ndarray,
    b_scores: Sequence[float] | np.ndarray,
    *,
    a: str = "a",
    b: str = "b",
    alpha: float = ALPHA,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> PairedTest:
    """Paired bootstrap on per-question score differences (nDCG@10, F1): the interval is the
    percentile interval of the resampled mean difference, the p-value the share of resampled
    differences, centred on zero (the null), at least as far from zero as the observed one."""
    x = np.asarray(a_scores, dtype=float)
    y = np.asarray(b_scores, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired scores need the same questions: {x.size} vs {y.size}")
    d = x - y
    if d.size == 0:
        nan = float("nan")
        return PairedTest(a, b, 0, nan, nan, nan, 1.0, "paired-bootstrap", alpha)
    observed = float(d.mean())
    if np.all(d == d[0]):
        p = 1.0 if observed == 0 else 0.0
        return PairedTest(a, b, int(d.size), observed, observed, observed, p, "paired-bootstrap", alpha)
    means = _resampled_means(d, n_resamples, seed)
    low, high = np.quantile(means, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
    centred = means - observed
    p = float((np.sum(np.abs(centred) >= abs(observed)) + 1) / (n_resamples + 1))
    return PairedTest(a, b, int(d.size), observed, float(low), float(high), min(p, 1.0),
                      "paired-bootstrap", alpha)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, for the several arm pairs of one run (controls the
    chance of any false 'A beats B' at alpha without Bonferroni's full price)."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        adjusted[idx] = running
    return adjusted.tolist()


def split_half(ids: Sequence[str], *, seed: int = 0) -> tuple[list[str], list[str]]:
    """A seeded, order-independent split of ids into two halves (by a hash of seed and id),
    so tuning on one half and reporting on the other is reproducible."""
    ranked = sorted(ids, key=lambda i: _rank(seed, i))
    half = len(ranked) // 2
    return sorted(ranked[:half]), sorted(ranked[half:])


def kfold(ids: Sequence[str], k: int, *, seed: int = 0) -> list[list[str]]:
    """Seeded, order-independent k folds of ids (sizes differ by at most one); each fold is
    held out once while the rest is used to tune."""
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    ranked = sorted(ids, key=lambda i: _rank(seed, i))
    k = min(k, len(ranked)) if ranked else k
    return [sorted(ranked[i::k]) for i in range(k)]


def _resampled_means(d: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_resamples, d.size))
    return d[idx].mean(axis=1)


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
