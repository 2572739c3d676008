"""A fine-tuned arm is scored only on questions it never trained on."""

from dataclasses import dataclass

import pytest

from ragortune.evaluate.heldout import NO_RECORD, NO_UNSEEN, compare_arms, score_arm, score_arms
from ragortune.tune.trained import SEEN, UNSEEN_FACT, UNSEEN_PHRASING, record_training


@dataclass(frozen=True)
class Row:
    arm: str
    query_id: str
    question: str
    answerable: bool | None
    correct: bool | None
    abstained: bool = False


TRAINED = record_training(
    [("price", "What does the Pro plan cost per month?", "$49"),
     ("price", "How much is Pro monthly?", "$49"),
     ("refund", "How many days do I have to ask for a refund?", "14 days")],
    held_out=[("uptime", "What uptime does the SLA promise?", "99.5%")],
    original_wording=False,
)


def test_a_planted_training_question_is_counted_as_seen_and_kept_out_of_the_accuracy():
    rows = [
        # planted: the exact wording of a training example, answered right (memorised)
        Row("ft", "planted", "how much is pro monthly", True, True),
        Row("ft", "price", "How much does the Fleetline Pro plan cost per vehicle per month?", True, False),
        Row("ft", "refund", "Within how many days can a new customer request a full refund?", True, True),
        Row("ft", "uptime", "What monthly uptime does the Fleetline SLA commit to?", True, False),
    ]
    score = score_arm(rows, TRAINED, fine_tuned=True)
    assert score.exposure == {"planted": SEEN, "price": UNSEEN_PHRASING,
                              "refund": UNSEEN_PHRASING, "uptime": UNSEEN_FACT}
    assert "planted" not in score.counted
    assert (score.accuracy.value, score.accuracy.n) == (pytest.approx(1 / 3), 3)
    assert score.accuracy == score.accuracy_unseen
    assert (score.accuracy_seen.value, score.accuracy_seen.n) == (1.0, 1)
    assert (score.accuracy_unseen_phrasing.n, score.accuracy_unseen_fact.n) == (2, 1)
    assert score.accuracy.low < score.accuracy.value < score.accuracy.high


def test_an_arm_asked_only_its_training_questions_gets_no_accuracy_and_says_why():
    rows = [Row("ft", "price", "What does the Pro plan cost per month?", True, True)]
    score = score_arm(rows, TRAINED, fine_tuned=True)
    assert score.accuracy is None and score.note == NO_UNSEEN
    assert score.accuracy_seen.value == 1.0


def test_a_fine_tuned_arm_without_a_training_record_gets_no_accuracy():
    score = score_arm([Row("ft", "q", "Anything?", True, True)], None, fine_tuned=True)
    assert score.accuracy is None and score.note == NO_RECORD


def test_arms_without_an_adapter_count_every_question():
    rows = [Row("rag", "a", "What does the Pro plan cost per month?", True, True),
            Row("rag", "b", "Unknown?", False, False, abstained=True)]
    score = score_arm(rows)
    assert score.accuracy.n == 1 and score.counted == {"a", "b"}
    assert score.abstention_recall.value == 1.0


def test_pairs_are_compared_only_on_questions_that_count_for_both():
    rows = [Row("rag", f"q{i}", f"Question {i}?", True, True) for i in range(12)]
    rows += [Row("ft", f"q{i}", f"Question {i}?", True, False) for i in range(12)]
    rows += [Row("rag", "price", "How much is Pro monthly?", True, False),
             Row("ft", "price", "How much is Pro monthly?", True, True)]  # seen by ft
    scores = score_arms(rows, {"ft": TRAINED}, {"ft"})
    (comparison,) = compare_arms(rows, scores)
    data = comparison.to_json()
    assert data["n"] == 12 and (data["a_only"], data["b_only"]) == (12, 0)
    assert data["significant"] and data["verdict"].startswith("rag is more accurate")


def test_cross_validated_abstention_does_not_reward_a_threshold_fitted_to_its_own_questions():
    import numpy as np

    from ragortune.evaluate.heldout import cross_validate
    from ragortune.rag.calibrate import choose_threshold, operating_points

    answerable_scores = np.linspace(0.6, 0.9, 20)
    unanswerable_scores = np.array([0.30, 0.34, 0.38, 0.42, 0.46, 0.50, 0.55])
    scores = np.concatenate([answerable_scores, unanswerable_scores])
    answerable = np.array([True] * 20 + [False] * 7)
    ids = [f"q{i}" for i in range(27)]
    in_sample = operating_points(scores, answerable, np.array([choose_threshold(scores, answerable)]))[0]
    assert in_sample.recall == 1.0  # the threshold was fitted to these very questions
    cv = cross_validate(scores, answerable, ids, k=len(ids))  # leave-one-out
    assert cv.recall.n == 7 and cv.recall.value == pytest.approx(6 / 7)
    assert {q: a for q, a, _ in cv.abstained}["q26"] is False  # the 0.55 one slips through
    assert cv.to_json()["recall"]["split"] == "cross-validated"


def test_cross_validation_needs_both_kinds_of_question_in_every_training_part():
    import numpy as np

    from ragortune.errors import InputError
    from ragortune.evaluate.heldout import cross_validate

    with pytest.raises(InputError, match="fewer folds"):
        cross_validate(np.array([0.9, 0.8, 0.2]), np.array([True, True, False]), ["a", "b", "c"], k=3)
