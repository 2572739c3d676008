"""SciFact ingested on the local path and on Ray (a local two-node cluster): time and sameness.

    python bench/ray_ingest.py [--dataset ../shared/datasets/scifact] [--limit N]
                               [--workers 2] [--cpus-per-worker 0.4] [--shards 1] [--json]

The corpus (or its first `--limit N` documents, split into `--shards` JSONL files) is copied
to a temporary folder and ingested twice into fresh KBs with the default embedder and
chunking: by `ragortune.kb.sync.sync` in this process, then by the same `sync` with a
`RayEngine` on a `ray.cluster_utils.Cluster` of two nodes (1 CPU each; `--workers` actor
pairs at `--cpus-per-worker` CPU), as tests/scale/test_ray_ingest.py does. Printed:
  - wall time of each ingest (the local one after its model is loaded; Ray's includes its
    actors loading theirs) and chunks/s; the cluster start-up apart;
  - the checks issue 13 asks: same chunk ids (set equality and counts), same texts and
    content hashes, vectors equal within cosine >= 0.9999, and for every judged SciFact query
    the same top-10 chunk ids in hybrid and dense search (the count of queries that differ),
    with nDCG@10 of both KBs (with --limit, documents outside the subset count as misses).
Exit status 1 when a check fails. Results also go to bench/out/ray_ingest.json.
Run timed jobs alone on the machine: the figures are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MIN_COSINE = 0.9999
MODES = ("hybrid", "dense")
TOP = 10


def write_corpus(dataset: Path, docs: Path, limit: int | None, shards: int) -> int:
    """The corpus's first `limit` lines, dealt in order into `shards` JSONL files."""
    lines = [line for line in (dataset / "corpus.jsonl").read_text().splitlines() if line.strip()]
    lines = lines[:limit] if limit else lines
    docs.mkdir(parents=True)
    size = -(-len(lines) // shards)
    for i in range(shards):
        part = lines[i * size:(i + 1) * size]
        if part:
            (docs / f"corpus-{i:03d}.jsonl").write_text("\n".join(part) + "\n")
    return len(lines)


def start_cluster() -> Any:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    return cluster


def compare_kbs(local: Any, on_ray: Any) -> dict[str, Any]:
    """Chunk ids, texts, content hashes and vectors of the two KBs, side by side."""
    mine = {c.chunk_id: c for c in on_ray.chunks()}
    theirs = {c.chunk_id: c for c in local.chunks()}
    shared = sorted(mine.keys() & theirs.keys())
    fields = ("text", "content_hash", "doc_id", "title", "heading", "position")
    differ = sum(any(getattr(mine[i], f) != getattr(theirs[i], f) for f in fields)
                 for i in shared)
    hashes = sorted({theirs[i].content_hash for i in shared})
    a = local.reader().vectors_by_hash(hashes)
    b = on_ray.reader().vectors_by_hash(hashes)
    both = [h for h in hashes if h in a and h in b]
    if both:
        left, right = np.stack([a[h] for h in both]), np.stack([b[h] for h in both])
        cosines = (left * right).sum(1) / (np.linalg.norm(left, axis=1)
                                           * np.linalg.norm(right, axis=1))
        min_cosine = float(cosines.min())
    else:
        min_cosine = float("nan")
    return {"chunks_local": len(theirs), "chunks_ray": len(mine),
            "same_chunk_ids": mine.keys() == theirs.keys(),
            "ids_only_local": len(theirs.keys() - mine.keys()),
            "ids_only_ray": len(mine.keys() - theirs.keys()),
            "chunks_with_other_text_or_hash": differ,
            "vectors_compared": len(both), "vectors_missing": len(hashes) - len(both),
            "min_cosine": min_cosine}


def compare_search(local: Any, on_ray: Any, dataset: Path) -> dict[str, Any]:
    """Top-10 chunk ids per judged query and mode on both KBs, and nDCG@10 of each."""
    from ragortune.evaluate.datasets import load_dataset
    from ragortune.evaluate.retrieval import run_queries
    from ragortune.retrieve import search

    data = load_dataset(dataset, check_corpus=False)
    qids = sorted(data.qrels)
    vectors = local.embedder.embed([data.queries[q].text for q in qids])
    out: dict[str, Any] = {"queries": len(qids)}
    for mode in MODES:
        differ = 0
        for qid, vector in zip(qids, vectors, strict=True):
            text = data.queries[qid].text
            a, b = (search(kb, text, k=TOP, mode=mode, query_vector=vector)
                    for kb in (local, on_ray))
            differ += [h.chunk_id for h in a] != [h.chunk_id for h in b]
        out[mode] = {"queries_top10_differ": differ,
                     "ndcg@10_local": run_queries(local, data, mode, ks=(TOP,)).means()["ndcg@10"],
                     "ndcg@10_ray": run_queries(on_ray, data, mode, ks=(TOP,)).means()["ndcg@10"]}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from ragortune.embed import load_embedder
    from ragortune.kb import open_kb
    from ragortune.kb.ray_engine import RayEngine
    from ragortune.kb.sync import sync

    with tempfile.TemporaryDirectory(prefix="ray-ingest-") as tmp:
        work = Path(tmp)
        documents = write_corpus(args.dataset, work / "docs", args.limit, args.shards)

        started = time.perf_counter()
        embedder = load_embedder(args.embedder)
        embedder.embed(["warm up"])
        load_s = time.perf_counter() - started
        local = open_kb(work / "local", embedder=embedder, create=True)
        started = time.perf_counter()
        expected = sync(local, [work / "docs"])
        local_s = time.perf_counter() - started

        started = time.perf_counter()
        cluster = start_cluster()
        cluster_s = time.perf_counter() - started
        try:
            on_ray = open_kb(work / "ray", embedder=embedder, create=True)
            engine = RayEngine(cluster.address, workers=args.workers,
                               cpus_per_worker=args.cpus_per_worker)
            started = time.perf_counter()
            report = sync(on_ray, [work / "docs"], engine=engine)
            ray_s = time.perf_counter() - started
        finally:
            ray.shutdown()
            cluster.shutdown()

        result: dict[str, Any] = {
            "documents": documents, "shards": args.shards, "embedder": args.embedder,
            "workers": args.workers, "cpus_per_worker": args.cpus_per_worker,
            "nodes": 2, "cpus_per_node": 1,
            "model_load_s": load_s,
            "local": {"seconds": local_s, "chunks_embedded": expected.chunks_embedded,
                      "embedding_tokens": expected.embedding_tokens,
                      "chunks_per_s": expected.chunks_embedded / local_s},
            "ray": {"seconds": ray_s, "cluster_start_s": cluster_s,
                    "chunks_embedded": report.chunks_embedded,
                    "embedding_tokens": report.embedding_tokens,
                    "chunks_per_s": report.chunks_embedded / ray_s},
            "same_manifest": local.load_manifest().documents == on_ray.load_manifest().documents,
            "kb": compare_kbs(local, on_ray),
        }
        if not args.skip_search:
            result["search"] = compare_search(local, on_ray, args.dataset)
    result["ok"] = checks_pass(result)
    return result


def checks_pass(result: dict[str, Any]) -> bool:
    kb = result["kb"]
    same = (result["same_manifest"] and kb["same_chunk_ids"]
            and kb["chunks_local"] == kb["chunks_ray"]
            and not kb["chunks_with_other_text_or_hash"] and not kb["vectors_missing"]
            and kb["min_cosine"] >= MIN_COSINE)
    search = result.get("search")
    return bool(same and (search is None or all(
        not search[mode]["queries_top10_differ"] for mode in MODES)))


def print_table(result: dict[str, Any]) -> None:
    local, ray, kb = result["local"], result["ray"], result["kb"]
    print(f"SciFact, {result['documents']:,} documents in {result['shards']} file(s), "
          f"embedder {result['embedder']} (model load {result['model_load_s']:.1f} s, apart); "
          f"Ray: {result['nodes']} nodes x {result['cpus_per_node']} CPU, "
          f"{result['workers']} workers at {result['cpus_per_worker']} CPU")
    rows = [("", "local", "Ray"),
            ("ingest wall time (s)", f"{local['seconds']:.1f}", f"{ray['seconds']:.1f}"),
            ("cluster start-up (s)", "-", f"{ray['cluster_start_s']:.1f}"),
            ("chunks embedded", f"{local['chunks_embedded']:,}", f"{ray['chunks_embedded']:,}"),
            ("chunks/s", f"{local['chunks_per_s']:.1f}", f"{ray['chunks_per_s']:.1f}"),
            ("chunks in the KB", f"{kb['chunks_local']:,}", f"{kb['chunks_ray']:,}")]
    checks = [("same manifest", str(result["same_manifest"])),
              ("same chunk ids (set)", (f"{kb['same_chunk_ids']} ({kb['ids_only_local']} only "
                                       f"local, {kb['ids_only_ray']} only Ray)")),
              ("other text/hash/fields", f"{kb['chunks_with_other_text_or_hash']} chunks"),
              ("min vector cosine", (f"{kb['min_cosine']:.6f} over {kb['vectors_compared']:,} "
                                    f"(need >= {MIN_COSINE})"))]
    search = result.get("search")
    if search:
        for mode in MODES:
            s = search[mode]
            checks.append((f"{mode} top-{TOP} differ", (f"{s['queries_top10_differ']} of "
                           f"{search['queries']} queries; nDCG@10 {s['ndcg@10_local']:.4f} "
                           f"local, {s['ndcg@10_ray']:.4f} Ray")))
    for name, a, b in rows:
        print(f"  {name:24} {a:>10} {b:>10}")
    for name, value in checks:
        print(f"  {name:24} {value}")
    print("all checks pass" if result["ok"] else "CHECKS FAILED")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared/datasets/scifact")
    parser.add_argument("--limit", type=int, help="only the first N documents")
    parser.add_argument("--shards", type=int, default=1,
                        help="JSONL files the corpus is split into (Ray reads files in parallel)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpus-per-worker", type=float, default=0.4)
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--skip-search", action="store_true", help="no query comparison")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if not (args.dataset / "corpus.jsonl").is_file():
        print(f"{args.dataset}: no corpus.jsonl (pass --dataset)", file=sys.stderr)
        return 2
    try:
        import ray  # noqa: F401
    except ImportError:
        print("needs the scale extra: pip install -e '.[scale]'", file=sys.stderr)
        return 2
    result = run(args)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ray_ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
