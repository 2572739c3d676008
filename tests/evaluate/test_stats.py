"""Intervals and paired tests against published reference values and closed forms."""

import math

import numpy as np
import pytest
from scipy import stats as sp

from ragortune.evaluate.stats import (
    bootstrap_mean,
    holm,
    kfold,
    mcnemar,
    paired_bootstrap,
    proportion,
    split_half,
    wilson,
)


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat Med 17:857,
# Table I, method 3 (Wilson score, no continuity correction).
@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe_reference(successes, n, low, high):
    est = wilson(successes, n)
    assert est.n == n and est.value == pytest.approx(successes / n)
    assert (round(est.low, 4), round(est.high, 4)) == (low, high)


def test_a_perfect_score_on_30_questions_is_not_reported_as_certain():
    est = proportion([True] * 30)
    assert est.value == 1.0 and est.high == 1.0
    assert est.low < 0.9  # 30/30 is compatible with a true accuracy near 0.89


def test_no_questions_gives_no_figure():
    assert math.isnan(wilson(0, 0).value)


def test_bootstrap_interval_of_a_mean_is_seeded_and_agrees_with_the_normal_interval_at_large_n():
    rng = np.random.default_rng(1)
    values = (rng.random(400) < 0.3).astype(float)
    first, again = bootstrap_mean(values, seed=7), bootstrap_mean(values, seed=7)
    assert first == again
    half_width = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert first.low == pytest.approx(values.mean() - half_width, abs=0.01)
    assert first.high == pytest.approx(values.mean() + half_width, abs=0.01)


def test_bootstrap_interval_narrows_with_more_queries():
    rng = np.random.default_rng(0)
    small, large = rng.random(25), rng.random(900)
    assert (large_e := bootstrap_mean(large)).high - large_e.low < 0.5 * (
        (small_e := bootstrap_mean(small)).high - small_e.low
    )


def test_bootstrap_of_identical_values_is_a_point():
    est = bootstrap_mean([0.5] * 10)
    assert (est.value, est.low, est.high) == (0.5, 0.5, 0.5)


def _exact_mcnemar_p(b: int, c: int) -> float:
    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def test_mcnemar_counts_only_discordant_questions_and_matches_the_exact_binomial():
    # 6 questions only arm a gets right, 16 only arm b, 50 both, 8 neither.
    a = [1] * 6 + [0] * 16 + [1] * 50 + [0] * 8
    b = [0] * 6 + [1] * 16 + [1] * 50 + [0] * 8
    test = mcnemar(a, b, a="rag", b="ft")
    assert (test.a_only, test.b_only, test.n) == (6, 16, 80)
    assert test.p_value == pytest.approx(_exact_mcnemar_p(6, 16), rel=1e-9)
    assert test.p_value == pytest.approx(0.05248, abs=5e-5)
    assert not test.significant
    assert test.diff == pytest.approx((6 - 16) / 80)
    assert test.low < test.diff < test.high


def test_mcnemar_finds_a_clear_difference_significant():
    test = mcnemar([1] * 12 + [1] * 18, [0] * 12 + [1] * 18)
    assert test.p_value == pytest.approx(2 / 2**12)
    assert test.significant and test.low > 0


def test_mcnemar_with_no_discordant_pair_is_not_significant():
    assert mcnemar([1, 0, 1], [1, 0, 1]).p_value == 1.0


def test_paired_outcomes_must_be_on_the_same_questions():
    with pytest.raises(ValueError, match="same questions"):
        mcnemar([1, 0], [1, 0, 1])


def test_paired_bootstrap_agrees_with_the_paired_t_test_on_normal_differences():
    rng = np.random.default_rng(3)
    a = rng.random(300)
    b = a - 0.02 + rng.normal(0, 0.15, 300)
    test = paired_bootstrap(a, b, n_resamples=4000)
    ref = sp.ttest_rel(a, b)
    ci = ref.confidence_interval()
    assert test.diff == pytest.approx(float(np.mean(a - b)))
    assert test.p_value == pytest.approx(ref.pvalue, abs=0.02)
    assert test.low == pytest.approx(ci.low, abs=0.005) and test.high == pytest.approx(ci.high, abs=0.005)


def test_paired_bootstrap_sees_no_difference_between_an_arm_and_itself():
    scores = np.linspace(0, 1, 40)
    test = paired_bootstrap(scores, scores)
    assert test.diff == 0 and test.p_value == 1.0 and not test.significant


def test_holm_adjustment_matches_the_step_down_formula():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 with running maximum
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_split_half_is_seeded_disjoint_and_independent_of_input_order():
    ids = [f"q{i}" for i in range(11)]
    first, second = split_half(ids, seed=4)
    assert split_half(list(reversed(ids)), seed=4) == (first, second)
    assert set(first).isdisjoint(second) and set(first) | set(second) == set(ids)
    assert abs(len(first) - len(second)) <= 1
    assert split_half(ids, seed=5) != (first, second)


def test_kfold_holds_out_every_id_exactly_once():
    ids = [f"q{i}" for i in range(23)]
    folds = kfold(ids, 5, seed=1)
    assert sorted(i for fold in folds for i in fold) == sorted(ids)
    assert {len(f) for f in folds} <= {4, 5}
