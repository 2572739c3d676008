"""SciFact retrieval quality for dense, BM25 and hybrid search, through the product's own KB.

    python bench/retrieval.py [--dataset ../shared/datasets/scifact] [--kb bench/out/scifact-kb]

Builds the KB once (incremental: a second run reuses it), then prints nDCG@10, MRR@10,
recall@10 and recall@100 per mode. `ragortune eval retrieval` runs the same functions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ragortune.evaluate.datasets import load_dataset
from ragortune.evaluate.retrieval import index_dataset, run_queries
from ragortune.kb import open_kb

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared/datasets/scifact"))
    parser.add_argument("--kb", default=str(ROOT / "bench/out/scifact-kb"))
    args = parser.parse_args()
    dataset = load_dataset(Path(args.dataset))
    kb = open_kb(args.kb, create=True)
    started = time.perf_counter()
    report = index_dataset(kb, dataset)
    print(f"index: {report.chunks_embedded} chunks embedded, {kb.manifest.chunk_count} in KB, "
          f"{time.perf_counter() - started:.1f} s")
    print(f"{'mode':8} {'nDCG@10':>8} {'MRR@10':>8} {'R@10':>8} {'R@100':>8} {'p50 ms':>8}")
    for mode in ("dense", "bm25", "hybrid"):
        result = run_queries(kb, dataset, mode=mode, ks=(1, 5, 10, 100))
        m = result.means()
        p50 = result.usage()["latency_ms"]["p50"]
        print(f"{mode:8} {m['ndcg@10']:8.3f} {m['mrr@10']:8.3f} {m['recall@10']:8.3f} "
              f"{m['recall@100']:8.3f} {p50:8.1f}")


if __name__ == "__main__":
    main()
