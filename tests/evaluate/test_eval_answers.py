"""The arms runner and the knowledge-update test: scoring logic on plain rows, then the real
CLI with the shipped SmolLM2 on documents the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragortune.errors import InputError
from ragortune.evaluate.arms import Arm, ArmAnswer, make_arms, parse_arms, run_arms, summarise
from ragortune.evaluate.evidence import load_evidence
from ragortune.evaluate.update import UpdateResult, changed_facts, retraining_cost, stage
from ragortune.kb.sync import SyncReport
from ragortune.questions import Question

V1 = {"pricing.md": "# Pricing\n\nThe Pro plan costs $49 per month.\n",
      "office.md": "# Office\n\nThe office is in Lyon, next to the river.\n"}
V2 = {"pricing.md": "# Pricing\n\nThe Pro plan costs $59 per month.\n",
      "office.md": V1["office.md"]}



def row(arm: str, qid: str, answer: str, answerable: bool | None, contains: bool | None,
        abstained: bool, supported: bool | None = None, latency: float = 100.0) -> ArmAnswer:
    return ArmAnswer(arm, qid, f"question {qid}", answer, answerable, float(bool(contains)),
                     float(bool(contains)), contains, contains, abstained, (), supported, 5,
                     100, 10, latency)


def test_summary_per_arm_accuracy_abstention_citations_and_cost() -> None:
    rows = [
        row("rag", "a1", "25 days", True, True, False, supported=True, latency=100),
        row("rag", "a2", "wrong", True, False, False, supported=False, latency=200),
        row("rag", "a3", "Not in the knowledge base.", True, False, True, latency=300),
        row("rag", "u1", "Not in the knowledge base.", False, True, True, latency=400),
        row("base", "a1", "25 days", True, True, False),
    ]
    s = summarise(rows)
    rag = s["rag"]
    assert rag["accuracy"] == pytest.approx(1 / 3)  # contains-gold over the 3 answerable
    assert rag["abstention"] == {"precision": 0.5, "recall": 1.0}  # 2 abstained, 1 right
    assert rag["citation_support_rate"] == 0.5
    assert rag["latency_ms"]["p50"] == pytest.approx(250.0)
    assert rag["tokens_per_query"] == {"embedding": 5.0, "prompt": 100.0, "completion": 10.0}
    assert (rag["answerable"], rag["unanswerable"]) == (3, 1)
    assert s["base"]["accuracy"] == 1.0 and s["base"]["citation_support_rate"] is None


def test_arms_are_a_table_and_fine_tuned_ones_need_an_adapter() -> None:
    assert parse_arms("base, rag,rag") == ["base", "rag"]
    with pytest.raises(InputError, match="--arms"):
        parse_arms("base,magic")
    with pytest.raises(InputError, match="--adapter"):
        make_arms(["base", "hybrid"], lambda adapter: object())
    loaded: list[str | None] = []
    arms = make_arms(["base", "rag", "ft", "hybrid"], lambda a: loaded.append(a) or a, "ad")
    assert [(a.name, a.retrieval, a.adapter) for a in arms] == [
        ("base", False, None), ("rag", True, None), ("ft", False, "ad"), ("hybrid", True, "ad")]
    assert loaded == [None, "ad"]  # one model per adapter, shared by the arms


@pytest.fixture
def faq_kb(tmp_path: Path, embedder):
    from ragortune.kb import open_kb
    from ragortune.kb.sync import sync

    (tmp_path / "docs").mkdir()
    for name, text in V1.items():
        (tmp_path / "docs" / name).write_text(text)
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    sync(kb, [tmp_path / "docs"])
    return kb


def test_rag_arm_abstains_at_the_gate_without_a_model(faq_kb) -> None:
    questions = [Question("q", "What colour is the moon's hat?", ())]
    rows = run_arms([Arm("rag", True, None)], questions, faq_kb, min_score=0.99)
    assert rows[0].abstained and rows[0].exact_match == 1.0  # abstaining is right here
    assert rows[0].prompt_tokens == 0 and rows[0].embedding_tokens > 0


def test_questions_without_answers_are_refused() -> None:
    with pytest.raises(InputError, match="no question carries `answers`"):
        run_arms([], [Question("q", "text", None)], None)


def test_changed_facts_and_stale_answers() -> None:
    v1 = [Question("price", "Pro price?", ("$49",)), Question("same", "Office?", ("Lyon",)),
          Question("gone", "Old?", ("x",))]
    v2 = [Question("price", "Pro price?", ("$59",)), Question("same", "Office?", ("lyon",)),
          Question("new", "New product?", ("Atlas",)), Question("none", "CEO?", ())]
    assert changed_facts(v1, v2) == {"price": ("$49",), "new": ()}
    after = [row("rag", "price", "It costs $49.", True, False, False),
             row("rag", "new", "Atlas", True, True, False),
             row("rag", "same", "Lyon", True, True, False),
             row("base", "price", "I don't know.", True, False, True)]
    result = UpdateResult(after, after, SyncReport(), SyncReport(updated=1, seconds=1.5),
                          changed_facts(v1, v2))
    per_arm = result.per_arm([Arm("rag", True, None), Arm("base", False, None)], v2)
    arm = per_arm["rag"]
    assert arm["stale_rate"]["value"] == 1.0  # the one changed fact still gets its v1 value
    assert arm["stale_rate"]["n"] == 1 and arm["stale_rate"]["low"] < 0.5  # one fact says little
    assert arm["new_fact_accuracy"]["value"] == 0.5 and arm["new_facts"] == 2
    assert arm["update_cost"]["kind"] == "reindex" and arm["update_cost"]["seconds"] == 1.5
    assert per_arm["base"]["update_cost"]["kind"] == "none"
    assert per_arm["base"]["stale_rate"]["value"] == 0.0


def test_retraining_cost_comes_from_the_adapters_training_record(tmp_path: Path) -> None:
    (tmp_path / "ragortune_train.json").write_text(json.dumps(
        {"train_seconds": 42.5, "tokens": 12000, "examples": 64, "device": "cpu"}))
    cost = retraining_cost(str(tmp_path))
    assert (cost["seconds"], cost["tokens"], cost["estimated"]) == (42.5, 12000, True)
    assert retraining_cost(str(tmp_path / "nothing"))["seconds"] is None


def test_stage_replaces_the_previous_version(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "a.md").write_text("# A\n\nold")
    (tmp_path / "v2" / "qrels").mkdir(parents=True)
    (tmp_path / "v2" / "corpus.jsonl").write_text('{"_id": "d", "text": "new"}\n')
    (tmp_path / "v2" / "queries.jsonl").write_text('{"_id": "q", "text": "?"}\n')
    docs = tmp_path / "docs"
    stage(tmp_path / "v1", docs)
    assert [p.name for p in docs.iterdir()] == ["a.md"]
    stage(tmp_path / "v2", docs)  # a BEIR folder contributes its corpus only
    assert [p.name for p in docs.iterdir()] == ["corpus.jsonl"]


def test_eval_update_end_to_end_with_smollm2(tmp_path: Path, monkeypatch, embedder) -> None:
    from ragortune.cli import app

    for name, files in (("v1", V1), ("v2", V2)):
        (tmp_path / name).mkdir()
        for file, text in files.items():
            (tmp_path / name / file).write_text(text)
    question = {"_id": "pro", "text": "How much does the Pro plan cost per month?"}
    (tmp_path / "q1.jsonl").write_text(json.dumps({**question, "answers": ["$49"]}) + "\n")
    (tmp_path / "q2.jsonl").write_text(json.dumps({**question, "answers": ["$59"]}) + "\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [
        "eval", "update", "--v1", "v1", "--v2", "v2", "--questions-v1", "q1.jsonl",
        "--questions-v2", "q2.jsonl", "--arms", "rag", "--out", "results", "--json"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    docs = data["index_v2"]["documents"]
    assert (docs["updated"], docs["unchanged"], docs["added"]) == (1, 1, 0)
    assert data["new_facts"] == 1
    rag = data["arms"]["rag"]
    assert rag["update_cost"]["kind"] == "reindex"
    assert rag["update_cost"]["chunks_embedded"] == data["index_v2"]["chunks_embedded"] >= 1
    assert [(r["version"], r["arm"]) for r in data["answers"]] == [("v1", "rag"), ("v2", "rag")]
    v1_answer, v2_answer = (r["answer"] for r in data["answers"])
    # after the sync, RAG reads the new document: it states the v2 price, not the v1 one
    assert "$49" in v1_answer and "$59" in v2_answer and "$49" not in v2_answer
    assert rag["new_fact_accuracy"]["value"] == 1.0 and rag["stale_rate"]["value"] == 0.0
    assert rag["stale_rate"]["n"] == 1
    evidence = load_evidence(tmp_path / "results" / "evidence.json")
    assert evidence.arm("rag").stale_rate == 0.0
    assert evidence.arm("rag").stale_figure.split == "held-out"


def test_eval_answers_runs_base_and_rag_side_by_side(tmp_path: Path, monkeypatch, embedder
                                                    ) -> None:
    from ragortune.cli import app

    ds = tmp_path / "faq"
    (ds / "qrels").mkdir(parents=True)
    (ds / "corpus.jsonl").write_text("".join(json.dumps({"_id": n, "text": t}) + "\n"
                                             for n, t in V1.items()))
    (ds / "queries.jsonl").write_text(json.dumps(
        {"_id": "pro", "text": "How much does the Pro plan cost per month?", "answers": ["$49"]}
    ) + "\n")
    (ds / "qrels" / "test.tsv").write_text("pro\tpricing.md\t1\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "answers", "--dataset", str(ds), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["arms"]) == {"base", "rag"}
    assert data["arms"]["base"]["tokens_per_query"]["embedding"] == 0.0
    assert data["arms"]["rag"]["tokens_per_query"]["prompt"] > \
        data["arms"]["base"]["tokens_per_query"]["prompt"]  # the context costs prompt tokens
    assert [(r["arm"], r["query_id"]) for r in data["answers"]] == [("base", "pro"), ("rag", "pro")]
    evidence = load_evidence(tmp_path / "ragortune-eval" / "faq" / "evidence.json")
    assert evidence.arm("rag").accuracy == data["arms"]["rag"]["accuracy"]
    assert evidence.arm("rag").latency_p50_ms == data["arms"]["rag"]["latency_ms"]["p50"]


def test_eval_answers_without_labelled_questions_stops_before_indexing(tmp_path: Path,
                                                                      monkeypatch) -> None:
    from ragortune.cli import app

    ds = tmp_path / "plain"
    (ds / "qrels").mkdir(parents=True)
    (ds / "corpus.jsonl").write_text(json.dumps({"_id": "d", "text": "Lyon."}) + "\n")
    (ds / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "Where?"}) + "\n")
    (ds / "qrels" / "test.tsv").write_text("q\td\t1\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "answers", "--dataset", str(ds)])
    assert isinstance(result.exception, InputError)
    assert "no question carries `answers`" in str(result.exception)
    assert not (tmp_path / "ragortune-eval").exists()


def test_eval_answers_asks_an_existing_kb_with_a_questions_file(faq_kb, tmp_path: Path,
                                                               monkeypatch) -> None:
    from ragortune.cli import app

    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"_id": "pro", "text": "How much does the Pro plan cost?",
                                     "answers": ["$49"]}) + "\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "answers", "--questions", str(questions), "--kb",
                                      str(faq_kb.path), "--arms", "rag", "--max-tokens", "16",
                                      "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dataset"]["name"] == "questions" and data["dataset"]["documents"] == 2
    assert len(data["dataset"]["files"]["corpus"]) == 64  # the KB's documents stand for it
    assert data["settings"]["k"] == 3  # as `ragortune ask`
    assert data["answers"][0]["embedding_tokens"] > 0
    assert (tmp_path / "ragortune-eval" / "questions" / "evidence.json").is_file()
    missing = CliRunner().invoke(app, ["eval", "answers", "--questions", str(questions), "--kb",
                                       str(tmp_path / "nowhere"), "--arms", "rag"])
    assert isinstance(missing.exception, InputError) and "no knowledge base" in str(
        missing.exception)
    no_kb = CliRunner().invoke(app, ["eval", "answers", "--questions", str(questions)])
    assert isinstance(no_kb.exception, InputError) and "--kb" in str(no_kb.exception)


def test_a_withdrawn_fact_still_stated_is_stale_and_declining_there_is_right() -> None:
    from ragortune.evaluate.update import withdrawn_facts

    v1 = [Question("g1", "G1 part number?", ("GW-1100",)), Question("pro", "Pro price?", ("$49",))]
    v2 = [Question("g1", "G1 part number?", ()), Question("pro", "Pro price?", ("$59",))]
    assert changed_facts(v1, v2) == {"g1": ("GW-1100",), "pro": ("$49",)}
    assert withdrawn_facts(v1, v2) == {"g1"}
    after = [row("rag", "g1", "The part number is GW-1100.", False, False, False),
             row("rag", "pro", "It costs $59.", True, True, False),
             row("base", "g1", "I don't know.", False, True, True),
             row("base", "pro", "It costs $49.", True, False, False)]
    result = UpdateResult(after, after, SyncReport(), SyncReport(updated=1), changed_facts(v1, v2),
                          withdrawn=frozenset(withdrawn_facts(v1, v2)))
    per_arm = result.per_arm([Arm("rag", True, None), Arm("base", False, None)], v2)
    rag, base = per_arm["rag"], per_arm["base"]
    assert rag["stale_rate_withdrawn"]["value"] == 1.0 and rag["stale_rate_withdrawn"]["n"] == 1
    assert rag["stale_rate_changed"]["value"] == 0.0
    assert rag["stale_rate"]["value"] == 0.5 and rag["stale_rate"]["n"] == 2
    assert base["stale_rate_withdrawn"]["value"] == 0.0  # declining a withdrawn fact is right
    assert base["stale_rate_changed"]["value"] == 1.0
    assert base["new_fact_accuracy"]["value"] == 0.5  # the decline counts as right
    assert rag["new_fact_accuracy"]["value"] == 0.5
    assert rag["stale_rate"]["low"] < 0.5 < rag["stale_rate"]["high"]


def test_a_fine_tuned_arm_is_stale_only_on_facts_its_adapter_learned(tmp_path: Path) -> None:
    """Two facts change; the adapter learned only the price. Its v1 answer to the plan it never
    saw is a guess, not a stale fact, so the stale rate counts the price alone."""
    from ragortune.tune.train import RUN_FILE
    from ragortune.tune.trained import RECORD_KEY, TrainedOn, question_hash

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    record = TrainedOn(frozenset({"price"}), frozenset({question_hash("What does Pro cost?")}),
                       held_out_fact_ids=frozenset({"plan"}))
    (adapter / RUN_FILE).write_text(json.dumps({"dataset_build": {RECORD_KEY: record.to_dict()}}))
    v1 = [Question("price", "Pro price?", ("$49",)), Question("plan", "Default plan?", ("Basic",))]
    v2 = [Question("price", "Pro price?", ("$59",)), Question("plan", "Default plan?", ("Team",))]
    after = [row("ft", "price", "It costs $49.", True, False, False),
             row("ft", "plan", "Basic", True, False, False),
             row("rag", "price", "It costs $59.", True, True, False),
             row("rag", "plan", "Basic", True, False, False)]
    result = UpdateResult(after, after, SyncReport(), SyncReport(updated=1), changed_facts(v1, v2))
    per_arm = result.per_arm([Arm("ft", False, None, str(adapter)), Arm("rag", True, None)], v2)
    assert per_arm["ft"]["stale_rate"]["n"] == 1 and per_arm["ft"]["stale_rate"]["value"] == 1.0
    assert per_arm["rag"]["stale_rate"]["n"] == 2 and per_arm["rag"]["stale_rate"]["value"] == 0.5
