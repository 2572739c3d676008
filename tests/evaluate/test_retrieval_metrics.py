"""Retrieval metrics checked by hand and against ranx (the reference implementation) to 1e-6."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from ragortune.evaluate.retrieval_metrics import evaluate_rankings, metric_names, rank_documents

ranx = pytest.importorskip("ranx", reason="ranx, the reference, is a test extra: '.[test]'")

pytestmark = pytest.mark.filterwarnings("ignore::Warning")  # numba type-safety noise inside ranx

NAMES = metric_names()


def ranx_scores(qrels: dict, rankings: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """ranx per-query scores (queries sorted) for runs already in rank order.

    Scores descend with rank, so ranx ranks exactly as we do, ties included.
    """
    run = {q: {d: float(len(docs) - i) for i, d in enumerate(docs)}
           for q, docs in rankings.items() if docs}
    out = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), NAMES, return_mean=False,
                        make_comparable=True)
    return {name: np.asarray(out[name], dtype=float) for name in NAMES}


def assert_matches_ranx(qrels: dict, rankings: dict[str, list[str]]) -> dict[str, np.ndarray]:
    ours = evaluate_rankings(qrels, rankings)
    assert list(ours.query_ids) == sorted(qrels)
    ref = ranx_scores(qrels, rankings)
    for name in NAMES:
        np.testing.assert_allclose(ours.per_query[name], ref[name], atol=1e-6, err_msg=name)
        assert ours.mean()[name] == pytest.approx(float(ref[name].mean()), abs=1e-6)
    return ours.per_query


def test_single_relevant_document_at_rank_three() -> None:
    got = assert_matches_ranx({"q": {"a": 1}}, {"q": ["x", "y", "a", "z"]})
    assert got["mrr@10"][0] == pytest.approx(1 / 3)
    assert got["ndcg@10"][0] == pytest.approx(1 / math.log2(4))
    assert got["recall@1"][0] == 0.0 and got["recall@5"][0] == 1.0
    assert got["hit_rate@1"][0] == 0.0 and got["hit_rate@5"][0] == 1.0


def test_no_relevant_document_retrieved_scores_zero() -> None:
    got = assert_matches_ranx({"q": {"a": 1, "b": 2}}, {"q": ["x", "y", "z"]})
    assert all(got[name][0] == 0.0 for name in NAMES)


def test_multiple_relevant_documents() -> None:
    got = assert_matches_ranx({"q": {"a": 1, "b": 1, "c": 1}}, {"q": ["a", "x", "b", "y"]})
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["ndcg@10"][0] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert got["recall@5"][0] == pytest.approx(2 / 3)
    assert got["mrr@10"][0] == 1.0


def test_graded_relevance_uses_linear_gain() -> None:
    got = assert_matches_ranx({"q": {"a": 2, "b": 1, "n": 0}}, {"q": ["n", "b", "a"]})
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 + 1 / math.log2(3)
    assert got["ndcg@10"][0] == pytest.approx(dcg / idcg)
    assert got["mrr@10"][0] == pytest.approx(0.5)  # grade 0 is judged but not relevant


def test_query_with_empty_run_counts_as_zero_in_the_mean() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    got = assert_matches_ranx(qrels, {"q1": ["a"], "q2": []})
    assert list(got["mrr@10"]) == [1.0, 0.0]
    missing = evaluate_rankings(qrels, {"q1": ["a"]})  # query absent from the run altogether
    assert missing.mean()["mrr@10"] == 0.5


def test_query_with_only_non_relevant_judgements_scores_zero() -> None:
    got = assert_matches_ranx({"q1": {"a": 1}, "q2": {"b": 0}}, {"q1": ["a"], "q2": ["b"]})
    assert all(got[name][1] == 0.0 for name in NAMES)


def test_cutoffs_stop_at_ten_and_at_one_hundred() -> None:
    docs = [f"d{i:03d}" for i in range(150)]
    qrels = {"q10": {"d009": 1}, "q11": {"d010": 1}, "q100": {"d099": 1}, "q101": {"d100": 1}}
    got = assert_matches_ranx(qrels, {q: docs for q in qrels})
    by_q = {q: i for i, q in enumerate(sorted(qrels))}
    assert got["mrr@10"][by_q["q10"]] == pytest.approx(0.1)
    assert got["mrr@10"][by_q["q11"]] == 0.0
    assert got["recall@100"][by_q["q100"]] == 1.0
    assert got["recall@100"][by_q["q101"]] == 0.0


def test_queries_outside_the_qrels_are_ignored() -> None:
    got = evaluate_rankings({"q": {"a": 1}}, {"q": ["a"], "other": ["a", "b"]})
    assert got.query_ids == ("q",)


def test_random_runs_match_ranx() -> None:
    rng = random.Random(7)
    pool = [f"doc{i}" for i in range(400)]
    qrels, rankings = {}, {}
    for i in range(60):
        q = f"q{i}"
        qrels[q] = {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(pool, rng.randint(1, 15))}
        rankings[q] = rng.sample(pool, rng.randint(0, 130))
    assert_matches_ranx(qrels, rankings)


def test_ties_break_by_document_id_ascending() -> None:
    ranked = rank_documents([("b", 1.0), ("a", 1.0), ("c", 2.0)])
    assert [d for d, _ in ranked] == ["c", "a", "b"]
    got = assert_matches_ranx({"q": {"b": 1}}, {"q": [d for d, _ in ranked]})
    assert got["mrr@10"][0] == pytest.approx(1 / 3)


def test_tie_order_does_not_depend_on_the_order_hits_arrive_in() -> None:
    hits = [(f"d{i}", float(i // 3)) for i in range(12)]
    expected = rank_documents(hits)
    for seed in range(5):
        shuffled = hits[:]
        random.Random(seed).shuffle(shuffled)
        assert rank_documents(shuffled) == expected


def test_ranx_agrees_on_tied_scores_given_our_order() -> None:
    """ranx keeps insertion order among tied scores on short runs: hand it ours, scores tied."""
    ranked = rank_documents([("z", 0.5), ("m", 0.5), ("a", 0.5), ("k", 0.9)])
    qrels = {"q": {"a": 1, "z": 2}}
    run = ranx.Run({"q": dict(ranked)})
    ref = ranx.evaluate(ranx.Qrels(qrels), run, NAMES, return_mean=False)
    ours = evaluate_rankings(qrels, {"q": [d for d, _ in ranked]})
    for name in NAMES:
        assert ours.per_query[name][0] == pytest.approx(float(np.asarray(ref[name])[0]), abs=1e-6)


def test_chunked_document_counts_at_its_best_chunks_rank() -> None:
    hits = [("d1", 0.9), ("d2", 0.8), ("d1", 0.7), ("d3", 0.6), ("d2", 0.1)]
    assert rank_documents(hits) == [("d1", 0.9), ("d2", 0.8), ("d3", 0.6)]
    assert rank_documents([]) == []


def test_a_ranking_that_repeats_a_document_is_refused() -> None:
    with pytest.raises(ValueError, match="repeats document 'a'"):
        evaluate_rankings({"q": {"a": 1}}, {"q": ["a", "b", "a"]})


def test_rows_are_plain_values_per_query() -> None:
    rows = evaluate_rankings({"q": {"a": 1}}, {"q": ["a"]}).rows()
    assert rows == [{"query_id": "q", **{name: 1.0 for name in NAMES}}]
    assert all(type(v) in (str, float) for v in rows[0].values())
