"""The record of what an adapter was trained on, and the sorting of evaluation questions by it."""

import json
from pathlib import Path

import pytest

from ragortune.errors import InputError
from ragortune.tune.trained import (
    SEEN,
    UNSEEN_FACT,
    UNSEEN_PHRASING,
    TrainedOn,
    check_paraphrases,
    exposures,
    question_hash,
    read_paraphrases,
    record_training,
)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_kb"


def test_a_trained_question_stays_seen_through_case_punctuation_and_spacing():
    assert question_hash("What is the refund window?") == question_hash("  what is the REFUND window ")
    assert question_hash("What is the refund window?") != question_hash("How long is the refund window?")


def test_questions_are_sorted_into_seen_unseen_phrasing_and_unseen_fact():
    record = record_training(
        [("price", "How much is Pro per month?", "$49"),
         ("price", "What does the Pro plan cost monthly?", "$49")],
        held_out=[("refund", "Within how many days can I get a refund?", "14 days")],
    )
    assert record.exposure("price", "how much is pro per month") == SEEN
    kinds = exposures([("price", "What is Pro's monthly price?"),
                       ("refund", "Within how many days can I get a refund?"),
                       ("new", "What is new?")], record)
    assert kinds == {"price": UNSEEN_PHRASING, "refund": UNSEEN_FACT, "new": UNSEEN_FACT}
    assert record.held_out_fact_ids == {"refund"}


def test_the_record_survives_its_json_round_trip():
    record = record_training([("a", "Q one?", "1"), ("b", "Q two?", "2")], original_wording=False,
                             paraphrase_file="p.jsonl")
    again = TrainedOn.from_dict(json.loads(json.dumps(record.to_dict())), "build.json")
    assert again == record


def test_a_damaged_record_is_refused_naming_the_key():
    with pytest.raises(InputError, match="trained.question_hashes"):
        TrainedOn.from_dict({"fact_ids": ["a"], "question_hashes": "abc"}, "build.json")


def test_demo_paraphrases_reword_every_question_without_giving_the_answer_away():
    paraphrases = read_paraphrases(DEMO / "paraphrases.jsonl")
    for version in ("v1", "v2"):
        rows = [json.loads(line) for line in (DEMO / f"questions-{version}.jsonl").open()]
        assert set(paraphrases) == {r["_id"] for r in rows}
        for row in rows:
            texts = paraphrases[row["_id"]]
            assert len(texts) >= 3
            hashes = {question_hash(t) for t in texts}
            assert len(hashes) == len(texts) and question_hash(row["text"]) not in hashes
            for answer in row["answers"]:
                assert not any(answer.casefold() in t.casefold() for t in texts), (row["_id"], answer)


def test_paraphrase_file_errors_name_line_and_field(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"_id": "a", "paraphrases": ["ok?"]}\n{"_id": "b", "paraphrases": "no"}\n')
    with pytest.raises(InputError, match=r"p.jsonl:2: field 'paraphrases'"):
        read_paraphrases(bad)
    with pytest.raises(InputError, match="unknown question ids"):
        check_paraphrases({"zz": ["?"]}, ["a"], "p.jsonl")
