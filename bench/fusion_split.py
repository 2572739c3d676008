"""Hybrid fusion weight chosen out of sample on SciFact: pick the dense weight on one half of the
judged queries, report nDCG@10 on the other half, both ways.

    python bench/fusion_split.py --kb KB [--dataset ../shared/datasets/scifact] [--seed 0]

KB must hold the data set's corpus (build it with `python bench/retrieval.py --kb KB`). The
dense and BM25 candidates of each query are fetched once, as `ragortune search --mode hybrid`
fetches them, then fused at every weight of the grid (`retrieve.convex_fusion`), so each
weight is scored on exactly the candidates the product would fuse. The in-sample best weight
and the shipped default (retrieve.DENSE_WEIGHT) are printed beside the honest figures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ragortune.evaluate.datasets import load_dataset
from ragortune.evaluate.retrieval import CHUNK_FACTOR
from ragortune.evaluate.retrieval_metrics import evaluate_rankings, rank_documents
from ragortune.evaluate.stats import bootstrap_mean, paired_bootstrap, split_half
from ragortune.kb import open_kb
from ragortune.retrieve import DENSE_WEIGHT, convex_fusion

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = [round(w, 2) for w in np.linspace(0, 1, 21)]
DEPTH = 100  # documents per ranking, as bench/retrieval.py (cutoffs up to 100)


def candidates(kb, dataset, qids):
    """Per query: the dense and BM25 chunk candidates hybrid search fuses, and chunk -> doc."""
    store = kb.reader()
    k = DEPTH * CHUNK_FACTOR
    depth = max(2 * k, 50)
    vectors = kb.embedder.embed([dataset.queries[q].text for q in qids])
    out = {}
    for qid, vector in zip(qids, vectors, strict=True):
        dense = store.dense_search(vector, depth)
        lexical = store.text_search(dataset.queries[qid].text, depth)
        doc_of = {c.chunk_id: c.doc_id for c in dense + lexical}
        out[qid] = ([(c.chunk_id, c.score) for c in dense],
                    [(c.chunk_id, c.score) for c in lexical], doc_of)
    return out, k


def ndcg_per_query(cands, k, qrels, weight):
    """nDCG@10 per query (sorted ids) with dense weight `weight`."""
    rankings = {}
    for qid, (dense, lexical, doc_of) in cands.items():
        fused = convex_fusion([dense, lexical], [weight, 1 - weight])
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        docs = rank_documents((doc_of[cid], score) for cid, score in best)[:DEPTH]
        rankings[qid] = [d for d, _ in docs]
    metrics = evaluate_rankings(qrels, rankings, ks=(10,))
    return dict(zip(metrics.query_ids, metrics.per_query["ndcg@10"], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared/datasets/scifact"))
    parser.add_argument("--kb", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset = load_dataset(Path(args.dataset))
    kb = open_kb(args.kb)
    qids = sorted(dataset.qrels)
    started = time.perf_counter()
    cands, k = candidates(kb, dataset, qids)
    per_weight = {w: ndcg_per_query(cands, k, dataset.qrels, w) for w in WEIGHTS}
    print(f"{len(qids)} judged queries, {len(WEIGHTS)} dense weights, "
          f"{time.perf_counter() - started:.0f} s")

    def mean_on(weight, ids):
        return float(np.mean([per_weight[weight][q] for q in ids]))

    def best_on(ids):
        return max(WEIGHTS, key=lambda w: (mean_on(w, ids), -abs(w - DENSE_WEIGHT)))

    half_a, half_b = split_half(qids, seed=args.seed)
    print(f"seed {args.seed}: half A {len(half_a)} queries, half B {len(half_b)}")
    print(f"{'tuned on':9} {'weight':>6} {'reported on':11} {'nDCG@10':>8} {'95% CI':>15} "
          f"{'in-sample':>9} {'default':>8} {'tuned-default p':>15}")
    for name_t, tune, name_r, report in (("A", half_a, "B", half_b), ("B", half_b, "A", half_a)):
        w = best_on(tune)
        held = bootstrap_mean([per_weight[w][q] for q in report], seed=args.seed)
        test = paired_bootstrap([per_weight[w][q] for q in report],
                                [per_weight[DENSE_WEIGHT][q] for q in report], seed=args.seed)
        print(f"{name_t:9} {w:6.2f} {name_r:11} {held.value:8.3f} "
              f"[{held.low:.3f}, {held.high:.3f}] {mean_on(w, tune):9.3f} "
              f"{mean_on(DENSE_WEIGHT, report):8.3f} {test.p_value:15.3f}")
    w_all = best_on(qids)
    full = bootstrap_mean([per_weight[w_all][q] for q in qids], seed=args.seed)
    default = bootstrap_mean([per_weight[DENSE_WEIGHT][q] for q in qids], seed=args.seed)
    print(f"all queries: best weight {w_all:.2f} in-sample nDCG@10 {full.value:.3f} "
          f"(chosen on the test queries: optimistic); default {DENSE_WEIGHT} -> "
          f"{default.value:.3f} [{default.low:.3f}, {default.high:.3f}]")
    print("curve: " + " ".join(f"{w:.2f}:{mean_on(w, qids):.3f}" for w in WEIGHTS))


if __name__ == "__main__":
    main()
