"""evidence.json schema 2: figures with provenance, range checks on read, version 1 still read."""

import json
from pathlib import Path

import pytest

from ragortune.errors import InputError
from ragortune.evaluate.evidence import (
    SCHEMA_VERSION,
    figure,
    load_evidence,
    parse_evidence,
    update_evidence,
)
from ragortune.evaluate.stats import wilson

DATASET = {"name": "demo", "path": "/data/demo", "files": {"corpus": "c1", "queries": "q1"},
           "hash": "h1"}


def _fig(successes: int, n: int, split: str = "held-out") -> dict:
    return figure(wilson(successes, n), split=split, run="answers@t0", dataset="h1")


@pytest.mark.parametrize(("data", "key"), [
    ({"arms": {"ft": {"accuracy": 1.7}}}, "arms.ft.accuracy"),
    ({"retrieval": {"recall@10": 42}}, "retrieval.recall@10"),
    ({"arms": {"rag": {"stale_rate": -0.1}}}, "arms.rag.stale_rate"),
    ({"arms": {"rag": {"accuracy": {"value": 0.5, "n": 10, "low": 0.6, "high": 0.8}}}},
     "arms.rag.accuracy"),
    ({"arms": {"rag": {"latency_ms": {"p95": -3}}}}, "arms.rag.latency_ms.p95"),
    ({"arms": {"rag": {"accuracy": "high"}}}, "arms.rag.accuracy"),
])
def test_values_outside_their_range_are_refused_naming_the_key(data, key):
    with pytest.raises(InputError, match=f"key '{key}'"):
        parse_evidence({"schema_version": 2, **data}, "evidence.json")


def test_a_version_1_file_still_loads():
    v1 = {"schema_version": 1, "arms": {"rag": {"accuracy": 0.767, "stale_rate": 0.0,
                                                "latency_ms": {"p50": 900.0, "p95": 1500.0},
                                                "tokens_per_query": {"prompt": 400}}},
          "retrieval": {"recall@10": 0.9, "mrr@10": 0.7}}
    ev = parse_evidence(v1, "old.json")
    assert ev.arm("rag").accuracy == 0.767 and ev.arm("rag").latency_p95_ms == 1500.0
    assert ev.arm("rag").accuracy_figure.split == "unknown"  # no n, no interval in version 1
    assert ev.recall == ("recall@10", 0.9) and ev.schema_version == 1


def test_figures_carry_n_interval_split_run_and_data_set(tmp_path: Path):
    arms = {"rag": {"accuracy": _fig(23, 30, "all")},
            "ft": {"accuracy": _fig(5, 20), "accuracy_seen": _fig(19, 19, "in-sample")}}
    comparisons = [{"a": "rag", "b": "ft", "n": 20, "significant": True}]
    path = update_evidence(tmp_path, {"arms": arms, "comparisons": comparisons}, "answers",
                           dataset=DATASET)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 2
    acc = data["arms"]["ft"]["accuracy"]
    assert (acc["n"], acc["split"], acc["run_id"], acc["dataset"]) == (20, "held-out",
                                                                         "answers@t0", "h1")
    assert acc["low"] < acc["value"] < acc["high"]
    ev = load_evidence(path)
    assert ev.arm("ft").accuracy == pytest.approx(0.25)
    assert ev.arm("ft").accuracy_figure.n == 20
    assert ev.significant("ft", "rag") is True


def test_a_writer_cannot_store_an_impossible_figure(tmp_path: Path):
    with pytest.raises(InputError, match="arms.ft.accuracy"):
        update_evidence(tmp_path, {"arms": {"ft": {"accuracy": {"value": 1.7, "n": 3}}}},
                        "answers", dataset=DATASET)
    assert not (tmp_path / "evidence.json").exists()


def test_runs_on_another_data_set_are_not_mixed_in(tmp_path: Path):
    update_evidence(tmp_path, {"arms": {"rag": {"accuracy": _fig(1, 2)}}}, "answers",
                    dataset=DATASET)
    other = {**DATASET, "files": {"corpus": "c2", "queries": "q1"}, "path": "/data/other"}
    with pytest.raises(InputError, match="holds results for data set /data/demo"):
        update_evidence(tmp_path, {"arms": {"rag": {"accuracy": _fig(2, 2)}}}, "answers",
                        dataset=other)


def test_every_writer_must_name_its_data_set(tmp_path: Path):
    with pytest.raises(TypeError):
        update_evidence(tmp_path, {"arms": {}}, "answers")  # type: ignore[call-arg]
