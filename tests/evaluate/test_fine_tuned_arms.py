"""The fine-tuned arms with the shipped SmolLM2: an adapter from `tune build` + `tune train`
(one step: these tests check the wiring, not what the model learns) loads through the answers
backend, answers closed-book (ft) and over the KB (hybrid), and `eval update --retrain`
trains a new adapter on the v2 questions and reports what that cost, measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragortune.evaluate.arms import CLOSED_BOOK_SYSTEM, Arm, ArmAnswer
from ragortune.evaluate.update import UpdateResult, changed_facts
from ragortune.kb.sync import SyncReport
from ragortune.questions import Question

V1 = {"pricing.md": "# Pricing\n\nThe Pro plan costs $49 per month.\n",
      "office.md": "# Office\n\nThe office is in Lyon, next to the river.\n"}
V2 = {**V1, "pricing.md": "# Pricing\n\nThe Pro plan costs $59 per month.\n"}

QUESTION = {"_id": "pro", "text": "How much does the Pro plan cost per month?"}
OTHER = {"_id": "office", "text": "Where is the office?", "answers": ["Lyon"]}
TRAIN_ARGS = ["--max-steps", "1", "--batch-size", "2", "--lr", "1e-2", "--lora-r", "4",
              "--top-layers", "2", "--no-validation", "--json"]


def row(qid: str, answer: str, correct: bool) -> ArmAnswer:
    return ArmAnswer("ft", qid, qid, answer, True, float(correct), float(correct), correct,
                     correct, False, (), None, 0, 40, 3, 100.0)


def invoke(*args: str) -> dict:
    from ragortune.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def update_files(tmp_path_factory) -> Path:
    """v1 and v2 documents, their questions, and a one-step adapter trained on the v1 ones."""
    root = tmp_path_factory.mktemp("update")
    for name, files in (("v1", V1), ("v2", V2)):
        (root / name).mkdir()
        for file, text in files.items():
            (root / name / file).write_text(text)
    for name, price in (("q1", "$49"), ("q2", "$59")):
        (root / f"{name}.jsonl").write_text(
            json.dumps({**QUESTION, "answers": [price]}) + "\n" + json.dumps(OTHER) + "\n")
    invoke("tune", "build", str(root / "q1.jsonl"), "--out", str(root / "ft-v1"), "--system",
           CLOSED_BOOK_SYSTEM, "--validation", "0", "--json")
    invoke("tune", "train", "--data", str(root / "ft-v1" / "train.jsonl"), "--out",
           str(root / "adapter-v1"), *TRAIN_ARGS)
    return root


def test_the_adapter_loads_through_the_answers_backend_and_changes_the_model(update_files
                                                                              ) -> None:
    import torch

    from ragortune.generate import load_llm

    base, tuned = load_llm("hf:smollm2"), load_llm("hf:smollm2", adapter=str(update_files / "adapter-v1"))
    assert type(tuned.model).__name__ == "PeftModelForCausalLM"
    assert tuned.name.endswith("+adapter-v1")
    ids = tuned.tokenizer("The Pro plan costs", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        assert not torch.allclose(base.model(ids).logits, tuned.model(ids).logits)


def test_ft_and_hybrid_arms_answer_with_the_adapter(update_files, tmp_path, monkeypatch,
                                                   embedder) -> None:
    ds = tmp_path / "faq"
    (ds / "qrels").mkdir(parents=True)
    (ds / "corpus.jsonl").write_text("".join(json.dumps({"_id": n, "text": t}) + "\n"
                                             for n, t in V1.items()))
    # a planted training question (the exact wording the adapter was trained on) and a new one
    reworded = {"_id": "pro-monthly", "text": "What is the monthly price of the Pro plan?",
                "answers": ["$49"]}
    (ds / "queries.jsonl").write_text(json.dumps({**QUESTION, "answers": ["$49"]}) + "\n"
                                      + json.dumps(reworded) + "\n")
    (ds / "qrels" / "test.tsv").write_text("pro\tpricing.md\t1\npro-monthly\tpricing.md\t1\n")
    monkeypatch.chdir(tmp_path)
    adapter = str(update_files / "adapter-v1")
    data = invoke("eval", "answers", "--dataset", str(ds), "--arms", "ft,hybrid", "--adapter",
                  adapter, "--max-tokens", "8", "--json")
    assert set(data["arms"]) == {"ft", "hybrid"}
    assert {arm["model"]["adapter"] for arm in data["arms"].values()} == {adapter}
    # the planted question is seen and kept out of the arms' accuracy; the new one counts
    exposure = {(r["arm"], r["query_id"]): r["exposure"] for r in data["answers"]}
    assert exposure == {("ft", "pro"): "seen", ("ft", "pro-monthly"): "unseen_fact",
                        ("hybrid", "pro"): "seen", ("hybrid", "pro-monthly"): "unseen_fact"}
    for arm in ("ft", "hybrid"):
        figures = data["figures"][arm]
        assert figures["accuracy"]["n"] == 1 and figures["accuracy"]["split"] == "held-out"
        assert figures["accuracy_seen"]["n"] == 1 and figures["seen_questions"] == 1
        right = {r["query_id"]: r["correct"] for r in data["answers"] if r["arm"] == arm}
        assert figures["accuracy"]["value"] == float(right["pro-monthly"])
    evidence = json.loads((tmp_path / "ragortune-eval" / "faq" / "evidence.json").read_text())
    assert evidence["arms"]["ft"]["accuracy"] == data["figures"]["ft"]["accuracy"]
    answers = {r["arm"]: r for r in data["answers"] if r["query_id"] == "pro"}
    assert answers["ft"]["answer"] and answers["ft"]["embedding_tokens"] == 0  # closed-book
    assert answers["hybrid"]["embedding_tokens"] > 0  # retrieval, then the tuned model
    assert answers["hybrid"]["prompt_tokens"] > answers["ft"]["prompt_tokens"]


def test_eval_update_retrain_trains_a_new_adapter_and_measures_it(update_files, tmp_path,
                                                                  monkeypatch, embedder) -> None:
    monkeypatch.chdir(update_files)
    data = invoke("eval", "update", "--v1", "v1", "--v2", "v2", "--questions-v1", "q1.jsonl",
                  "--questions-v2", "q2.jsonl", "--arms", "ft,hybrid", "--adapter",
                  "adapter-v1", "--retrain", "--max-tokens", "8", "--work", str(tmp_path),
                  "--json")
    retrained = data["retraining"]
    new = Path(retrained["adapter"])
    assert (new / "adapter_config.json").is_file() and new != update_files / "adapter-v1"
    record = json.loads((new / "ragortune_train.json").read_text())
    assert record["dataset_build"]["source"] == str((update_files / "q2.jsonl").resolve())
    assert record["dataset_build"]["settings"]["system"] == CLOSED_BOOK_SYSTEM
    assert record["config"]["max_steps"] == 1 and record["config"]["top_layers"] == 2
    assert retrained["estimated"] is False
    assert retrained["seconds"] > 0 and retrained["cpu_seconds"] > 0
    assert retrained["tokens"] == record["tokens"] > 0
    ft, hybrid = data["arms"]["ft"], data["arms"]["hybrid"]
    assert ft["update_cost"] == retrained and ft["adapter_v2"] == str(new)
    assert ft["adapter_v1"] == "adapter-v1"
    assert hybrid["update_cost"]["kind"] == "reindex+retrain"
    assert hybrid["update_cost"]["reindex"]["tokens"] == data["index_v2"]["embedding_tokens"] > 0
    assert hybrid["update_cost"]["seconds"] == pytest.approx(
        hybrid["update_cost"]["reindex"]["seconds"] + retrained["seconds"], abs=1e-3)
    # before the retraining, the same arms answered the new fact on the v1 adapter
    assert set(data["summary"]["v2"]) == {"ft", "hybrid"}
    old = data["arms"]["ft@v1"]
    assert old["adapter_v2"] == "adapter-v1" and old["new_facts"] == 1
    still_v1 = next(r for r in data["answers"] if r["arm"] == "ft@v1")
    stale = "$49" in still_v1["answer"] and "$59" not in still_v1["answer"] \
        and not still_v1["abstained"]
    assert old["stale_rate"]["value"] == float(stale) and old["stale_rate"]["n"] == 1
    assert old["accuracy_v2"] is None
    # the retrained adapter was trained on the v2 questions as written: no accuracy to claim
    assert data["figures"]["ft"]["accuracy"] is None
    assert "every question was a training question" in data["figures"]["ft"]["note"]
    assert data["figures"]["ft"]["accuracy_seen"]["n"] == 2
    assert data["arms"]["hybrid@v1"]["update_cost"]["kind"] == "reindex"
    assert [(r["version"], r["arm"], r["query_id"]) for r in data["answers"]] == [
        ("v1", "ft", "pro"), ("v1", "ft", "office"), ("v1", "hybrid", "pro"),
        ("v1", "hybrid", "office"), ("v2", "ft@v1", "pro"), ("v2", "hybrid@v1", "pro"),
        ("v2", "ft", "pro"), ("v2", "ft", "office"), ("v2", "hybrid", "pro"),
        ("v2", "hybrid", "office")]
    evidence = json.loads((tmp_path / "update-v2" / "evidence.json").read_text())
    stored = evidence["arms"]["ft"]["stale_rate"]
    assert {k: stored[k] for k in ("value", "n", "low", "high")} == \
        {k: old["stale_rate"][k] for k in ("value", "n", "low", "high")}
    assert stored["run_id"] == data["run_id"] and stored["dataset"] == evidence["dataset"]["hash"]
    assert evidence["arms"]["ft"]["retrained"]["tokens"] == retrained["tokens"]
    assert "ft@v1" not in evidence["arms"]


def test_without_retraining_ft_answers_v2_with_the_v1_adapter_and_stale_answers_count(
        tmp_path: Path) -> None:
    (tmp_path / "ragortune_train.json").write_text(json.dumps(
        {"train_seconds": 30.0, "cpu_seconds": 55.0, "tokens": 2000, "examples": 2}))
    v1 = [Question("pro", "Pro price?", ("$49",)), Question("office", "Office?", ("Lyon",))]
    v2 = [Question("pro", "Pro price?", ("$59",)), Question("office", "Office?", ("Lyon",))]
    after = [row("pro", "$49", False), row("office", "Lyon", True)]
    result = UpdateResult(after, after, SyncReport(), SyncReport(), changed_facts(v1, v2))
    ft = result.per_arm([Arm("ft", False, None, str(tmp_path))], v2)["ft"]
    assert ft["stale_rate"]["value"] == 1.0 and ft["new_fact_accuracy"]["value"] == 0.0
    assert ft["adapter_v2"] == ft["adapter_v1"] == str(tmp_path)
    assert ft["update_cost"]["estimated"] is True
    assert (ft["update_cost"]["seconds"], ft["update_cost"]["tokens"]) == (30.0, 2000)


def test_retrain_needs_a_fine_tuned_arm(tmp_path: Path) -> None:
    from ragortune.cli import app
    from ragortune.errors import InputError

    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    result = CliRunner().invoke(app, ["eval", "update", "--v1", str(tmp_path / "v1"), "--v2",
                                      str(tmp_path / "v2"), "--questions-v1", "q1.jsonl",
                                      "--questions-v2", "q2.jsonl", "--arms", "base,rag",
                                      "--retrain"])
    assert isinstance(result.exception, InputError)
    assert "add ft or hybrid" in str(result.exception)
