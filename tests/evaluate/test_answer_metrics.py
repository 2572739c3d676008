"""Answer metrics on examples whose scores can be checked by hand (SQuAD conventions)."""

from __future__ import annotations

import numpy as np
import pytest

from ragortune.evaluate.answer_metrics import (
    abstention_scores,
    exact_match,
    percentiles,
    score_answer,
    token_f1,
)
from ragortune.judge import strip_citations


def test_exact_match_ignores_articles_and_punctuation() -> None:
    assert exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel Tower in Paris", ["Eiffel Tower"]) == 0.0
    assert exact_match("1889", ["in 1889", "1889"]) == 1.0  # best gold wins


def test_token_f1_on_partial_overlap() -> None:
    # prediction: eiffel tower in paris (4 tokens); gold: eiffel tower (2): P=1/2, R=1
    assert token_f1("Eiffel Tower in Paris", ["the Eiffel Tower"]) == pytest.approx(2 / 3)
    assert token_f1("Paris", ["London", "Paris, France"]) == pytest.approx(2 / 3)
    assert token_f1("Berlin", ["Paris"]) == 0.0
    assert token_f1("a a b", ["a b b"]) == pytest.approx(2 / 3)  # counts clip per token


def test_score_answer_for_answerable_unanswerable_and_unlabelled() -> None:
    s = score_answer("The Eiffel Tower.", ["Eiffel Tower"])
    assert (s.exact_match, s.f1, s.contains_gold, s.abstained) == (1.0, 1.0, True, False)
    right = score_answer("Not in the knowledge base.", [])
    assert (right.exact_match, right.f1, right.contains_gold) == (1.0, 1.0, True)
    assert right.abstained
    wrong = score_answer("Olympus Mons.", [])
    assert (wrong.exact_match, wrong.f1, wrong.contains_gold) == (0.0, 0.0, False)
    unlabelled = score_answer("I don't know", None)
    assert unlabelled.exact_match is None and unlabelled.abstained is True


def test_abstention_precision_and_recall() -> None:
    #            q1     q2     q3     q4     q5
    abstained = [True, True, False, True, False]
    answerable = [False, True, False, False, True]
    # unanswerable: q1, q3, q4; abstained: q1, q2, q4 -> right: q1, q4
    got = abstention_scores(abstained, answerable)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    none = abstention_scores([False, False], [True, True])
    assert none["precision"] is None and none["recall"] is None


def test_percentiles_interpolate_linearly() -> None:
    got = percentiles(list(range(1, 101)))
    assert got == {"p50": pytest.approx(50.5), "p95": pytest.approx(95.05)}
    assert percentiles([]) == {"p50": None, "p95": None}
    assert percentiles(np.array([3.0]), qs=(50, 99)) == {"p50": 3.0, "p99": 3.0}


def test_citation_markers_do_not_count_as_answer_tokens() -> None:
    assert strip_citations("Paris [1] and Lyon [2, 3].") == "Paris and Lyon."
    cited = score_answer("The Eiffel Tower [1].", ["Eiffel Tower"])
    assert cited.exact_match == 1.0 and cited.f1 == 1.0
    assert score_answer("Not in the knowledge base. [1]", []).abstained
