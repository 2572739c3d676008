from __future__ import annotations

import json

import pytest

from ragortune.errors import InputError
from ragortune.questions import Question
from ragortune.tune.dataset import (
    Example,
    build_dataset,
    build_examples,
    parse_paraphrases,
    split,
)

from .conftest import FACTS


def write_beir(folder, facts=FACTS, extra=()):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "queries.jsonl").open("w") as fh:
        for i, (q, a) in enumerate(facts):
            fh.write(json.dumps({"_id": f"q{i}", "text": q, "answers": [a]}) + "\n")
        for record in extra:
            fh.write(json.dumps(record) + "\n")
    return folder


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_build_writes_chat_jsonl_with_system_prompt_and_split(tmp_path):
    beir = write_beir(tmp_path / "kb", extra=[{"_id": "u1", "text": "Who founded Mars?", "answers": []}])
    result = build_dataset(beir, tmp_path / "out", system="Answer about ACME.", validation=0.25)
    train, val = lines(result.train_path), lines(result.validation_path)
    assert (result.n_train, result.n_validation, result.skipped_unanswerable) == (6, 2, 1)
    assert len(train) + len(val) == len(FACTS)
    first = train[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[0]["content"] == "Answer about ACME."
    questions = {m["messages"][1]["content"] for m in train + val}
    assert questions == {q for q, _ in FACTS}


def test_unanswerable_questions_become_refusals_when_asked(tmp_path):
    beir = write_beir(tmp_path / "kb", facts=FACTS[:2], extra=[{"_id": "u1", "text": "Who founded Mars?", "answers": []}])
    result = build_dataset(beir, tmp_path / "out", validation=0, refusal="I don't know.")
    replies = [m["messages"][-1]["content"] for m in lines(result.train_path)]
    assert "I don't know." in replies and result.validation_path is None


def test_paraphrases_are_added_and_stay_with_their_fact_in_the_split():
    pairs = [Question(f"f{i}", q, (a,)) for i, (q, a) in enumerate(FACTS)]

    def reword(question, answer, n):
        return [(f"{question} (variant {k})", f"{answer} ({k})") for k in range(n)]

    examples, _ = build_examples(pairs, paraphrase=reword, n_paraphrases=2)
    assert len(examples) == 3 * len(FACTS)
    train, val = split(examples, validation=0.25, seed=1)
    assert {e.fact_id for e in train}.isdisjoint({e.fact_id for e in val})
    assert all(sum(e.fact_id == f for e in val) == 3 for f in {e.fact_id for e in val})


def test_variant_split_holds_out_one_paraphrase_of_each_fact():
    examples = [Example("a", [], 0), Example("a", [], 1), Example("b", [], 0), Example("b", [], 1)]
    train, val = split(examples, validation=0.5, by="variant")
    assert [(e.fact_id, e.variant) for e in val] == [("a", 1), ("b", 1)]
    assert len(train) == 2


def test_split_is_reproducible_from_the_seed():
    examples = [Example(f"f{i}", [], 0) for i in range(50)]
    assert split(examples, validation=0.2, seed=3) == split(examples, validation=0.2, seed=3)
    assert split(examples, validation=0.2, seed=3)[1] != split(examples, validation=0.2, seed=4)[1]


def test_paraphrase_replies_are_parsed_by_number():
    text = "Sure!\nQ1: Which port?\nA1: 8443.\nQ2: What port is used\nA2) It is 8443.\nnoise"
    assert parse_paraphrases(text) == [("Which port?", "8443."), ("What port is used", "It is 8443.")]


def test_queries_without_answers_are_refused_with_the_line(tmp_path):
    path = tmp_path / "queries.jsonl"
    path.write_text('{"_id": "1", "text": "q", "answers": ["a"]}\n{"_id": "2", "text": "no answers here"}\n')
    with pytest.raises(InputError, match=r"queries.jsonl:2: field 'answers': missing"):
        build_dataset(path, tmp_path / "out")


def test_question_answer_records_of_other_tools_are_trained_on(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"id": "s1", "question": "Q?", "answer": "A.", "source": "doc.md"}\n')
    result = build_dataset(path, tmp_path / "out", validation=0)
    assert [m["messages"][-2:] for m in lines(result.train_path)] == [
        [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]]


def test_cli_build_prints_its_json_schema(tmp_path):
    from typer.testing import CliRunner

    from ragortune.cli import app

    beir = write_beir(tmp_path / "kb")
    result = CliRunner().invoke(app, ["tune", "build", str(beir), "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_train"] + payload["n_validation"] == len(FACTS)
    assert set(payload) == {"train_path", "validation_path", "n_facts", "n_train", "n_validation",
                            "n_paraphrases", "skipped_unanswerable"}


def test_build_records_what_the_adapter_will_have_trained_on(tmp_path):
    from ragortune.tune.dataset import BUILD_FILE
    from ragortune.tune.trained import SEEN, UNSEEN_FACT, UNSEEN_PHRASING, TrainedOn, question_hash

    beir = write_beir(tmp_path / "kb")
    build_dataset(beir, tmp_path / "out", validation=0.25, seed=3)
    record = json.loads((tmp_path / "out" / BUILD_FILE).read_text())
    trained = TrainedOn.from_dict(record["trained"], BUILD_FILE)
    train = lines(tmp_path / "out" / "train.jsonl")
    held = lines(tmp_path / "out" / "validation.jsonl")
    assert {question_hash(t["messages"][-2]["content"]) for t in train} == trained.question_hashes
    assert len(trained.fact_ids) == len(train) and len(trained.held_out_fact_ids) == len(held)
    asked = held[0]["messages"][-2]["content"]
    fact = next(f for f in trained.held_out_fact_ids)
    assert trained.exposure(fact, asked) == UNSEEN_FACT
    fid = min(trained.fact_ids)
    question = next(q for i, (q, _) in enumerate(FACTS) if f"q{i}" == fid)
    assert trained.exposure(fid, question) == SEEN
    assert trained.exposure(fid, "Reworded: " + question) == UNSEEN_PHRASING


def test_hand_written_paraphrases_train_the_fact_and_leave_the_original_wording_unseen(tmp_path):
    from ragortune.tune.dataset import BUILD_FILE
    from ragortune.tune.trained import UNSEEN_PHRASING, TrainedOn

    beir = write_beir(tmp_path / "kb", facts=FACTS[:2])
    para = tmp_path / "paraphrases.jsonl"
    para.write_text(json.dumps({"_id": "q0", "paraphrases": ["P one?", "P two?"]}) + "\n"
                    + json.dumps({"_id": "q1", "paraphrases": ["P three?"]}) + "\n")
    result = build_dataset(beir, tmp_path / "out", validation=0, paraphrase_file=para,
                           original_wording=False)
    asked = [t["messages"][-2]["content"] for t in lines(result.train_path)]
    answers = [t["messages"][-1]["content"] for t in lines(result.train_path)]
    assert asked == ["P one?", "P two?", "P three?"]
    assert answers == [FACTS[0][1], FACTS[0][1], FACTS[1][1]]
    record = json.loads((tmp_path / "out" / BUILD_FILE).read_text())
    assert record["settings"]["paraphrase_file"] == str(para.resolve())
    trained = TrainedOn.from_dict(record["trained"], BUILD_FILE)
    assert trained.exposure("q0", FACTS[0][0]) == UNSEEN_PHRASING
    assert trained.paraphrases == 3 and not trained.original_wording


def test_paraphrases_only_without_paraphrases_is_refused(tmp_path):
    with pytest.raises(InputError, match="paraphrases only needs paraphrases"):
        build_dataset(write_beir(tmp_path / "kb"), tmp_path / "out", original_wording=False)


def test_paraphrases_for_unknown_questions_are_refused(tmp_path):
    para = tmp_path / "p.jsonl"
    para.write_text(json.dumps({"_id": "nope", "paraphrases": ["x?"]}) + "\n")
    with pytest.raises(InputError, match=r"p.jsonl:1: field '_id': paraphrases for unknown question id 'nope'"):
        build_dataset(write_beir(tmp_path / "kb"), tmp_path / "out", paraphrase_file=para)


def test_cli_build_trains_on_a_paraphrase_file_and_records_every_phrasing(tmp_path):
    from typer.testing import CliRunner

    from ragortune.cli import app
    from ragortune.tune.dataset import BUILD_FILE
    from ragortune.tune.trained import UNSEEN_PHRASING, TrainedOn, question_hash

    beir = write_beir(tmp_path / "kb", facts=FACTS[:2])
    para = tmp_path / "para.jsonl"
    para.write_text(json.dumps({"_id": "q0", "paraphrases": ["P one?", "P two?"]}) + "\n"
                    + json.dumps({"_id": "q1", "paraphrases": ["P three?"]}) + "\n")
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["tune", "build", str(beir), "--out", str(out), "--validation", "0",
                                      "--paraphrase-file", str(para), "--paraphrases-only", "--json"])
    assert result.exit_code == 0, result.output
    trained_rows = lines(out / "train.jsonl")
    assert [(r["messages"][-2]["content"], r["messages"][-1]["content"]) for r in trained_rows] == [
        ("P one?", FACTS[0][1]), ("P two?", FACTS[0][1]), ("P three?", FACTS[1][1])]
    assert json.loads(result.stdout)["n_paraphrases"] == 3
    record = json.loads((out / BUILD_FILE).read_text())
    assert record["settings"]["paraphrase_file"] == str(para.resolve())
    assert record["settings"]["original_wording"] is False
    trained = TrainedOn.from_dict(record["trained"], BUILD_FILE)
    assert set(record["trained"]["question_hashes"]) == {question_hash(t) for t in ("P one?", "P two?", "P three?")}
    assert trained.paraphrase_file == str(para.resolve())
    assert trained.exposure("q0", FACTS[0][0]) == UNSEEN_PHRASING


def test_cli_build_with_paraphrases_keeps_the_written_wording_unless_told(tmp_path):
    from typer.testing import CliRunner

    from ragortune.cli import app
    from ragortune.tune.dataset import BUILD_FILE
    from ragortune.tune.trained import SEEN, TrainedOn

    beir = write_beir(tmp_path / "kb", facts=FACTS[:1])
    para = tmp_path / "para.jsonl"
    para.write_text(json.dumps({"_id": "q0", "paraphrases": ["P one?"]}) + "\n")
    out = tmp_path / "o"
    result = CliRunner().invoke(app, ["tune", "build", str(beir), "--out", str(out), "--validation", "0",
                                      "--paraphrase-file", str(para)])
    assert result.exit_code == 0, result.output
    assert [r["messages"][-2]["content"] for r in lines(out / "train.jsonl")] == [FACTS[0][0], "P one?"]
    trained = TrainedOn.from_dict(json.loads((out / BUILD_FILE).read_text())["trained"], BUILD_FILE)
    assert trained.exposure("q0", FACTS[0][0]) == SEEN


def test_cli_build_names_the_line_of_a_bad_paraphrase(tmp_path):
    from typer.testing import CliRunner

    from ragortune.cli import app

    para = tmp_path / "para.jsonl"
    para.write_text(json.dumps({"_id": "q0", "paraphrases": ["ok?"]}) + "\n"
                    + json.dumps({"_id": "q9", "paraphrases": ["typo?"]}) + "\n")
    result = CliRunner().invoke(app, ["tune", "build", str(write_beir(tmp_path / "kb")), "--out",
                                      str(tmp_path / "o"), "--paraphrase-file", str(para)])
    assert isinstance(result.exception, InputError)  # `ragortune` prints it in one line, exit 2
    assert "para.jsonl:2: field '_id'" in str(result.exception) and "'q9'" in str(result.exception)
    assert not (tmp_path / "o" / "train.jsonl").exists()
