"""`ragortune compare` end to end on a small corpus, with the real shipped models."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from ragortune.compare import CompareConfig, run_compare
from ragortune.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples/demo_kb/scenario.toml"

DOCS = {
    "pricing.md": "# Pricing\n\nThe Pro plan costs $49 per vehicle per month.\n",
    "support.md": "# Support\n\nSupport is open from 8am to 6pm on weekdays.\n",
    "leave.md": "# Leave\n\nEmployees receive 20 days of paid time off per year.\n",
}
QUESTIONS = [
    {"_id": "price", "text": "How much does the Pro plan cost per vehicle per month?",
     "answers": ["$49"]},
    {"_id": "pto", "text": "How many days of paid time off do employees get per year?",
     "answers": ["20 days"]},
    {"_id": "none", "text": "Who designed the lunar landing module?", "answers": []},
    {"_id": "none2", "text": "What is the boiling point of liquid nitrogen?", "answers": []},
]


# one short epoch on two layers: these tests check what is trained and asked, not how well
TINY_RECIPE = {"epochs": 1, "batch_size": 2, "lr": 1e-3, "lora_r": 4, "top_layers": 2,
               "target_modules": ["q_proj", "v_proj"]}
MORE_DOCS = {
    "fleet.md": "# Fleet\n\nThe depot in Tarvale holds 212 trucks.\n",
    "phones.md": "# Phones\n\nThe support line number is 0800 431 772.\n",
    "founding.md": "# History\n\nThe company was founded in 1987 in Osterby.\n",
}
MORE_QUESTIONS = [
    {"_id": "trucks", "text": "How many trucks does the Tarvale depot hold?", "answers": ["212"]},
    {"_id": "phone", "text": "What is the support line's phone number?",
     "answers": ["0800 431 772"]},
    {"_id": "founded", "text": "In which year was the company founded?", "answers": ["1987"]},
]
PARAPHRASES = {
    "price": ["What is the monthly Pro price for one vehicle?",
              "Per vehicle and month, what does Pro cost?"],
    "pto": ["How much paid leave is there each year?",
            "What is the yearly paid time off allowance?"],
    "trucks": ["What is the truck capacity of the depot at Tarvale?",
               "The Tarvale depot can hold how many trucks?"],
    "phone": ["Which number do I call for support?", "How do I reach support by phone?"],
    "founded": ["When was the company started?", "What is the founding year of the firm?"],
    "none": ["Which engineer drew the lunar lander?", "Who was the lunar module's designer?"],
    "none2": ["At what temperature does liquid nitrogen boil?",
              "Liquid nitrogen boils at what temperature?"],
}


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def setup(tmp_path):
    docs = _write(tmp_path / "v1", DOCS)
    docs_v2 = _write(tmp_path / "v2", {**DOCS, "pricing.md": DOCS["pricing.md"].replace(
        "$49", "$59")})
    q1 = _jsonl(tmp_path / "q1.jsonl", QUESTIONS)
    q2 = _jsonl(tmp_path / "q2.jsonl", [{**q, "answers": ["$59"]} if q["_id"] == "price" else q
                                        for q in QUESTIONS])
    return CompareConfig(docs=docs, out=tmp_path / "out", questions=q1, docs_v2=docs_v2,
                         questions_v2=q2, scenario=SCENARIO, arms=("base", "rag"))


def test_compare_writes_evidence_decision_and_report_then_reuses_every_stage(setup):
    first = run_compare(setup)
    assert not any(stage["cached"] for stage in first.stages.values())
    evidence = json.loads(first.evidence.read_text())
    rag = evidence["arms"]["rag"]
    assert rag["accuracy"]["n"] == 2 and 0 <= rag["accuracy"]["low"] <= rag["accuracy"]["high"]
    assert rag["stale_rate"]["n"] == 1  # one fact changed between v1 and v2
    assert rag["abstention"]["recall"]["split"] == "cross-validated"
    assert first.decision is not None and first.decision["recommendation"]
    for name in ("report.html", "report.md", "answers.csv", "decision.json", "cost.json"):
        assert (setup.out / name).is_file(), name

    again = run_compare(setup)
    assert again.stages.keys() == first.stages.keys()
    assert all(stage["cached"] for stage in again.stages.values())
    same = json.loads(again.evidence.read_text())["arms"]["rag"]["accuracy"]
    assert {k: same[k] for k in ("value", "n", "low", "high")} == {
        k: rag["accuracy"][k] for k in ("value", "n", "low", "high")}


def test_editing_one_document_redoes_only_what_depends_on_the_kb(setup):
    run_compare(setup)
    (setup.docs / "support.md").write_text("# Support\n\nSupport is open around the clock.\n")
    rerun = run_compare(setup)
    assert rerun.run["index_v1"]["chunks_embedded"] == 1
    assert rerun.run["index_v1"]["documents"]["unchanged"] == 2
    assert not rerun.stages["answers v1"]["cached"]


def test_missing_inputs_are_refused_before_any_work(setup, tmp_path):
    with pytest.raises(InputError, match="--docs-v2"):
        run_compare(replace(setup, docs_v2=tmp_path / "absent"))
    with pytest.raises(InputError, match="--questions-v2"):
        run_compare(replace(setup, questions_v2=None))


def test_fine_tuned_arm_is_scored_only_on_wordings_it_never_trained_on(setup, tmp_path):
    paraphrases = _jsonl(tmp_path / "para.jsonl", [
        {"_id": "price", "paraphrases": ["What is the monthly Pro price for one vehicle?"]},
        {"_id": "pto", "paraphrases": ["How much paid leave is there each year?",
                                       # planted: the original wording up to case and
                                       # punctuation, so the question counts as seen
                                       QUESTIONS[1]["text"].upper().rstrip("?")]}])
    cfg = replace(setup, arms=("ft",), docs_v2=None, questions_v2=None, scenario=None,
                  paraphrases=paraphrases, held_out_facts=0.0, train=TINY_RECIPE)
    result = run_compare(cfg)
    figures = json.loads(result.evidence.read_text())["arms"]["ft"]
    assert figures["seen_questions"] == 1
    assert figures["accuracy"]["n"] == 1  # only the unseen question counts
    assert figures["accuracy_seen"]["n"] == 1
    shutil.rmtree(cfg.out)


def test_a_beir_folder_indexes_its_corpus_and_adds_retrieval_metrics(setup, tmp_path):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    _jsonl(beir / "corpus.jsonl", [{"_id": f"d{i}", "title": name, "text": text}
                                   for i, (name, text) in enumerate(DOCS.items())])
    _jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": "Pro plan price per vehicle"},
                                    {"_id": "q2", "text": "paid time off days per year"}])
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\nq2\td2\t1\n")
    result = run_compare(replace(setup, docs=beir, docs_v2=None, questions_v2=None,
                                 arms=("rag",), scenario=None))
    assert result.run["index_v1"]["documents"]["added"] == 3  # the corpus, not queries or qrels
    retrieval = json.loads(result.evidence.read_text())["retrieval"]
    assert retrieval["ndcg@10"]["n"] == 2 and 0 < retrieval["ndcg@10"]["value"] <= 1


def test_with_paraphrases_some_facts_are_never_trained_and_no_trained_wording_is_asked(
        setup, tmp_path):
    docs = _write(tmp_path / "v1", {**DOCS, **MORE_DOCS})
    questions = _jsonl(tmp_path / "q.jsonl", QUESTIONS + MORE_QUESTIONS)
    paraphrases = _jsonl(tmp_path / "para.jsonl", [{"_id": k, "paraphrases": v}
                                                   for k, v in PARAPHRASES.items()])
    cfg = replace(setup, docs=docs, questions=questions, arms=("base", "ft"), docs_v2=None,
                  questions_v2=None, scenario=None, paraphrases=paraphrases,
                  held_out_facts=0.4, train=TINY_RECIPE)
    result = run_compare(cfg)

    training = result.run["training"]
    assert (training["facts"], training["trained_facts"], training["held_out_facts"]) == (7, 4, 3)
    assert "3 facts never trained on" in training["protocol"]
    build = json.loads(next((cfg.out / "stages").glob("adapter-*/data/ragortune_build.json"))
                       .read_text())["trained"]
    held, trained = set(build["held_out_fact_ids"]), set(build["fact_ids"])
    assert len(held) == 3 and not held & trained
    taught = {json.loads(line)["messages"][-2]["content"] for line in
              next((cfg.out / "stages").glob("adapter-*/data/train.jsonl")).open()}
    asked = {q["text"] for q in QUESTIONS + MORE_QUESTIONS}
    assert not taught & asked  # the questions' own wording is never trained on
    assert taught == {p for fact in trained for p in PARAPHRASES[fact]}  # held-out facts: none

    evidence = json.loads(result.evidence.read_text())
    ft, base = evidence["arms"]["ft"], evidence["arms"]["base"]
    answerable = {q["_id"] for q in QUESTIONS + MORE_QUESTIONS if q["answers"]}
    assert ft["seen_questions"] == 0 and ft["accuracy_seen"] is None
    assert ft["accuracy_unseen_phrasing"]["n"] == len(answerable & trained)
    assert ft["accuracy_unseen_fact"]["n"] == len(answerable & held)
    assert ft["accuracy"]["n"] == len(answerable)
    for fig in (ft["accuracy_unseen_phrasing"], ft["accuracy_unseen_fact"]):
        assert fig["low"] <= fig["value"] <= fig["high"]
    # base trained on nothing: scored on the same two groups of questions, for comparison
    assert base["accuracy_unseen_phrasing"]["n"] == len(answerable & trained)
    assert base["accuracy_unseen_fact"]["subset_of"] == "ft"
    by_kind = result.figures["comparisons"]
    assert by_kind["unseen_phrasing"][0]["n"] == len(answerable & trained)
    assert result.figures["arms"]["ft"]["accuracy_unseen_fact"]["n"] == len(answerable & held)

    report = (cfg.out / "report.md").read_text()
    assert "unseen facts" in report and "3 facts never trained on" in report
    ft_row = next(line for line in report.splitlines() if line.startswith("| ft |"))
    assert f"n={len(answerable & held)} held-out" in ft_row
    assert "unseen phrasings" in (cfg.out / "report.html").read_text()
    shutil.rmtree(cfg.out)
