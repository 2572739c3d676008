"""The one gold matcher and abstention detector, used by `ask`, the RAG answer and the evaluation."""

from __future__ import annotations

import pytest

from ragortune.judge import (
    ABSTENTION_PHRASE,
    contains_gold,
    is_abstention,
    matches_gold,
    normalize_answer,
    tally,
    verdict,
)
from ragortune.questions import Question


@pytest.mark.parametrize("text, expected", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  an   apple, a day ", "apple day"),
    ("Theory of the atom", "theory of atom"),  # articles only as whole words
    ("U.S.A.", "usa"),
    ("", ""),
])
def test_squad_normalisation_drops_case_punctuation_and_articles(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


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


def test_a_gold_with_numbers_is_matched_by_its_numbers() -> None:
    assert matches_gold("The Starter plan allows at most 40.", ["40 vehicles"])
    assert matches_gold("It costs $59 per vehicle.", ["$59"])
    assert matches_gold("Release 4.3.0 is current.", ["4.3.0"])
    assert not matches_gold("The limit is 400.", ["40 vehicles"])  # whole tokens only
    assert not matches_gold("It is 25.", ["40 vehicles"])
    assert matches_gold("The office is in Lyon.", ["Lyon"])  # no numbers: contains-gold
    assert not matches_gold("The office is in Paris.", ["Lyon"])


def test_the_verdict_wants_the_gold_number_not_a_longer_one() -> None:
    """`ask`'s ✓ marks and the evaluation's accuracy: "40" is not answered by "400"."""
    assert verdict("The limit is 40 vehicles [1].", ["40"], abstained=False) is True
    assert verdict("The limit is 400 vehicles [1].", ["40"], abstained=False) is False
    # a citation marker is not a number of the answer
    assert verdict("Tokens expire after 45 minutes [1].", ["1 hour"], abstained=False) is False


def test_the_verdict_on_abstentions_and_unlabelled_questions() -> None:
    assert verdict("Not in the knowledge base.", []) is True  # unanswerable, declined
    assert verdict("Olympus Mons.", []) is False
    assert verdict("The answer is not in the knowledge base, 40.", ["40"]) is False
    assert verdict("Not in the knowledge base.", ["40"], abstained=True) is False
    assert verdict("Anything.", None) is None


def test_tally_counts_right_answers_and_right_abstentions() -> None:
    results = [(Question("a", "Limit?", ("40",)), "It is 400.", False),
               (Question("b", "Limit?", ("40",)), "It is 40.", False),
               (Question("c", "CEO?", ()), "Not in the knowledge base.", True),
               (Question("d", "News?"), "None.", False)]
    assert tally(results) == {"questions": 4, "answerable": 2, "answerable_correct": 1,
                              "unanswerable": 1, "unanswerable_abstained": 1}
