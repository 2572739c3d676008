"""Answer metrics on examples whose scores can be checked by hand (SQuAD conventions)."""

from __future__ import annotations

import numpy as np
import pytest

from ragortune.evaluate.answer_metrics import (
    ABSTENTION_PHRASE,
    abstention_scores,
    contains_gold,
    exact_match,
    is_abstention,
    matches_gold,
    normalize_answer,
    percentiles,
    score_answer,
    strip_citations,
    token_f1,
)


@pytest.mark.parametrize("text, expected", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  an   apple, a day ", "apple day"),
    ("Theory of the atom", "theory of atom"),  # articles only as whole words
    ("U.S.A.", "usa"),
    ("", ""),
])
def test_squad_normalisation_drops_case_punctuation_and_articles(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


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


def test_contains_gold_matches_whole_words_only() -> None:
    assert contains_gold("It was finished in 1889, by Eiffel's company.", ["1889"])
    assert not contains_gold("It was finished in 18890.", ["1889"])
    assert contains_gold("The capital is Paris.", ["London", "paris"])
    assert not contains_gold("anything", ["the"])  # a gold that normalises to nothing never matches


@pytest.mark.parametrize("text", [
    ABSTENTION_PHRASE,
    "Not in the knowledge base.",
    "I don't know.",
    "I do not know the answer to that.",
    "The context does not contain information about the boiling point.",
    "The provided documents don\u2019t mention this.",
    "Sorry. The answer is not mentioned in the context.",
    "I cannot answer this question based on the given context.",
    "There is no information about Mars in the sources.",
    "I'm not sure.",
    "I'm sorry for any confusion, but as a chatbot, I don't have the ability to provide that.",
    "",
    "  ...  ",
])
def test_abstentions_are_detected(text: str) -> None:
    assert is_abstention(text)


@pytest.mark.parametrize("text", [
    "Paris is the capital of France.",
    "Paris. The context does not mention its population.",  # answered first, caveat later
    "The tower is not in Berlin but in Paris.",
    "Knowledge bases store facts.",
    "No, vitamin B12 deficiency raises homocysteine.",
])
def test_answers_are_not_taken_for_abstentions(text: str) -> None:
    assert not is_abstention(text)


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


def test_a_gold_with_numbers_is_matched_by_its_numbers() -> None:
    assert matches_gold("The Starter plan allows at most 40.", ["40 vehicles"])
    assert matches_gold("It costs $59 per vehicle.", ["$59"])
    assert matches_gold("Release 4.3.0 is current.", ["4.3.0"])
    assert not matches_gold("The limit is 400.", ["40 vehicles"])  # whole tokens only
    assert not matches_gold("It is 25.", ["40 vehicles"])
    assert matches_gold("The office is in Lyon.", ["Lyon"])  # no numbers: contains-gold
    assert not matches_gold("The office is in Paris.", ["Lyon"])
