"""`ragortune eval retrieval` end to end: real KB, real MiniLM, files written by the test."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ragortune.errors import InputError
from ragortune.evaluate.evidence import load_evidence
from ragortune.evaluate.retrieval_metrics import evaluate_rankings

SCIFACT = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "scifact"

CORPUS = [
    {"_id": "leave", "title": "Leave policy",
     "text": "Employees get 25 days of paid annual leave per year. Sick leave needs a "
             "doctor's note after 3 days."},
    {"_id": "pricing", "title": "Pricing",
     "text": "The Pro plan costs 49 dollars per month. The Team plan costs 99 dollars per month."},
    {"_id": "support", "title": "Support hours",
     "text": "Support is open from 9:00 to 17:00 CET on working days."},
    {"_id": "office", "title": "Office",
     "text": "The office is in Lyon, next to the river. Visitors sign in at reception."},
]
QUERIES = [
    {"_id": "q1", "text": "How many days of paid annual leave do employees get?",
     "answers": ["25 days"]},
    {"_id": "q2", "text": "How much does the Team plan cost per month?", "answers": ["99 dollars"]},
    {"_id": "q3", "text": "When is support open?", "answers": ["9:00 to 17:00 CET"]},
    {"_id": "q4", "text": "Who is the chief executive?", "answers": []},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\tleave\t1\nq2\tpricing\t2\nq3\tsupport\t1\n"


def write_dataset(root: Path, corpus: list[dict] = CORPUS, queries: list[dict] = QUERIES,
                  qrels: str = QRELS) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, embedder):
    """The real Typer app run in tmp_path; `embedder` preloads MiniLM once per session."""
    from ragortune.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> dict[str, Any]:
        result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return invoke


def test_eval_retrieval_reports_metrics_rows_csv_and_evidence(cli, tmp_path: Path) -> None:
    ds = write_dataset(tmp_path / "faq")
    data = cli("eval", "retrieval", "--dataset", str(ds), "--mode", "bm25")
    assert data["metrics"]["recall@1"] == 1.0 and data["metrics"]["ndcg@10"] == 1.0
    assert [row["query_id"] for row in data["queries"]] == ["q1", "q2", "q3"]  # q4 has no qrels
    assert all(row["retrieved"][0] == {"q1": "leave", "q2": "pricing", "q3": "support"}[
        row["query_id"]] for row in data["queries"])
    assert data["index"]["documents"]["added"] == 4
    out = tmp_path / "ragortune-eval" / "faq"
    with (out / "retrieval.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["query_id"] for r in rows] == ["q1", "q2", "q3"]
    assert float(rows[0]["mrr@10"]) == 1.0
    evidence = json.loads((out / "evidence.json").read_text())
    assert evidence["schema_version"] == 2
    assert {"recall@10", "mrr@10", "ndcg@10"} <= evidence["retrieval"].keys()
    ndcg = evidence["retrieval"]["ndcg@10"]  # a figure: n, bootstrap interval, provenance
    assert (ndcg["value"], ndcg["n"], ndcg["split"], ndcg["method"]) == (1.0, 3, "all",
                                                                        "bootstrap")
    assert ndcg["run_id"] == evidence["runs"]["retrieval"]["run_id"]
    assert ndcg["dataset"] == evidence["dataset"]["hash"]
    assert evidence["dataset"]["files"]["corpus"] and evidence["versions"]["numpy"]
    assert evidence["runs"]["retrieval"]["settings"]["mode"] == "bm25"
    parsed = load_evidence(out / "evidence.json")  # what the cost stage reads
    assert parsed.recall == ("recall@10", 1.0) and parsed.mrr == ("mrr@10", 1.0)


def test_a_second_run_reuses_the_knowledge_base(cli, tmp_path: Path) -> None:
    ds = write_dataset(tmp_path / "faq")
    first = cli("eval", "retrieval", "--dataset", str(ds))
    again = cli("eval", "retrieval", "--dataset", str(ds))
    assert first["index"]["chunks_embedded"] == 4
    assert again["index"]["chunks_embedded"] == 0 and again["index"]["documents"]["unchanged"] == 4
    assert again["metrics"] == first["metrics"]


def test_a_chunked_document_counts_once_at_its_best_chunk(cli, tmp_path: Path) -> None:
    filler = " ".join(f"Paragraph {i} talks about office furniture and desks." for i in range(30))
    long_doc = {"_id": "long", "title": "Handbook",
                "text": filler + " The fire assembly point is the north car park."}
    ds = write_dataset(tmp_path / "chunky", corpus=[*CORPUS, long_doc],
                       queries=[{"_id": "f", "text": "Where is the fire assembly point?"}],
                       qrels="f\tlong\t1\n")
    data = cli("eval", "retrieval", "--dataset", str(ds), "--chunk-size", "48",
               "--chunk-overlap", "0", "--mode", "dense")
    assert data["kb"]["chunks"] > len(CORPUS) + 3  # the long document was split
    row = data["queries"][0]
    assert row["retrieved"][0] == "long" and row["first_relevant_rank"] == 1
    assert len(row["retrieved"]) == len(set(row["retrieved"])) == len(CORPUS) + 1


def test_sweep_writes_one_row_per_configuration(cli, tmp_path: Path) -> None:
    ds = write_dataset(tmp_path / "faq")
    data = cli("eval", "retrieval", "--dataset", str(ds), "--sweep", "mode=dense,bm25 k=1,3")
    rows = data["sweep"]
    assert [(r["mode"], r["k"]) for r in rows] == [("dense", 1), ("dense", 3), ("bm25", 1),
                                                   ("bm25", 3)]
    assert all({"ndcg@10", "mrr@10", "recall", "hit_rate"} <= r.keys() for r in rows)
    out = tmp_path / "ragortune-eval" / "faq"
    assert len(list(csv.DictReader((out / "retrieval-sweep.csv").open()))) == 4
    evidence = json.loads((out / "evidence.json").read_text())
    assert evidence["sweep"]["retrieval"] == rows
    # the configuration was chosen on one half of the 3 queries and is reported on the other
    ndcg = evidence["retrieval"]["ndcg@10"]
    assert ndcg["split"] == "held-out" and ndcg["n"] == 2
    assert "seeded half" in evidence["runs"]["retrieval"]["selected_by"]


def test_evidence_of_another_data_set_is_not_overwritten(cli, tmp_path: Path) -> None:
    from ragortune.cli import app

    out = tmp_path / "results"
    cli("eval", "retrieval", "--dataset", str(write_dataset(tmp_path / "a")), "--out", str(out),
        "--mode", "bm25")
    other = write_dataset(tmp_path / "b", corpus=CORPUS[:3])
    result = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(other), "--out",
                                      str(out), "--mode", "bm25"])
    assert isinstance(result.exception, InputError)
    assert "choose another --out folder" in str(result.exception)


def test_malformed_dataset_stops_before_any_indexing(tmp_path: Path, monkeypatch) -> None:
    from ragortune.cli import app

    monkeypatch.chdir(tmp_path)
    ds = write_dataset(tmp_path / "bad", qrels="q1\tleave\tmaybe\n")
    result = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(ds)])
    assert isinstance(result.exception, InputError)
    assert "test.tsv:1: field 'score'" in str(result.exception)
    assert not (tmp_path / "ragortune-eval" / "kb").exists()


@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact not found at {SCIFACT}")
def test_scifact_subset_end_to_end(cli, tmp_path: Path) -> None:
    """Real claims and abstracts: 15 judged claims, their abstracts and 100 distractors."""
    qrels: dict[str, dict[str, int]] = {}
    for row in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, grade = row.split("\t")
        if qid in qrels or len(qrels) < 15:
            qrels.setdefault(qid, {})[did] = int(grade)
    corpus = (SCIFACT / "corpus.jsonl").read_text().splitlines()
    wanted = {d for judged in qrels.values() for d in judged}
    wanted |= {json.loads(line)["_id"] for line in corpus[:100]}
    queries = [json.loads(line) for line in (SCIFACT / "queries.jsonl").read_text().splitlines()]
    root = tmp_path / "scifact-mini"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(line + "\n" for line in corpus if json.loads(line)["_id"] in wanted))
    (root / "queries.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in queries if q["_id"] in qrels))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q, judged in qrels.items() for d, g in judged.items()))

    data = cli("eval", "retrieval", "--dataset", str(root))
    assert len(data["queries"]) == 15
    assert data["dataset"]["documents"] == len(wanted)
    assert data["metrics"]["ndcg@10"] > 0.6
    rankings = {r["query_id"]: r["retrieved"] for r in data["queries"]}
    again = evaluate_rankings(qrels, rankings, ks=(1, 5, 10))  # rows hold the top 10
    for name in ("ndcg@10", "mrr@10", "recall@5", "recall@10"):
        assert again.mean()[name] == pytest.approx(data["metrics"][name], abs=1e-9)
