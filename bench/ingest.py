"""Ingest speed on SciFact through the product's own path, against raw encoding and LlamaIndex.

    python bench/ingest.py [--dataset ../shared/datasets/scifact] [--limit N] [--json]

One run prints:
  1. full ingest (`ragortune.kb.sync.sync` into a fresh KB, default embedder and chunking)
     and its embedding tokens/s;
  2. raw `SentenceTransformer.encode` of exactly the chunk texts the ingest embedded, same
     model object and batch size: overhead = full ingest / raw encode (target <= 1.10);
  3. re-ingest of the unchanged corpus (target <= 2 % of the full ingest);
  4. re-ingest after every 100th document got a sentence appended (target <= 4 %);
  5. the same corpus through LlamaIndex's `IngestionPipeline` (SentenceSplitter with the
     KB's chunk size/overlap counted in MiniLM tokens, the very same SentenceTransformer
     behind a `BaseEmbedding`, a `SimpleVectorStore` persisted to disk): speed ratio
     LlamaIndex / ours (target >= 1.5).
Steps 1-4 run once per embedding runtime (`--runtimes torch,onnx`, also `onnx-int8`): the
same MiniLM weights on sentence-transformers/PyTorch, on ONNX Runtime fp32 (the default) and
int8; each also reports nDCG@10 of hybrid search over its KB (all SciFact test queries; with
--limit, documents outside the subset count as misses, equally for every runtime). LlamaIndex
runs once, on the torch model, and each runtime's ratio is taken against it.
The corpus is copied to a temporary folder (step 4 edits it); nothing is written to the repo.
Needs `llama-index-core` (`pip install llama-index-core`), or `--no-llamaindex` to skip step 5.
Run timed jobs alone on the machine: the figures are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
EDIT_EVERY = 100
EDIT_SENTENCE = " This sentence was appended to measure an incremental re-ingest."
TARGETS = {"overhead": 1.10, "unchanged": 0.02, "edited": 0.04, "llamaindex": 1.5}


def corpus_lines(dataset: Path, limit: int | None) -> list[str]:
    lines = [line for line in (dataset / "corpus.jsonl").read_text().splitlines() if line.strip()]
    return lines[:limit] if limit else lines


def write_corpus(path: Path, lines: list[str], edit: bool = False) -> int:
    """Write the corpus; with `edit`, append a sentence to every EDIT_EVERY-th document."""
    edited = 0
    out = []
    for i, line in enumerate(lines):
        if edit and i % EDIT_EVERY == 0:
            row = json.loads(line)
            row["text"] = row["text"] + EDIT_SENTENCE
            line = json.dumps(row)
            edited += 1
        out.append(line)
    path.write_text("\n".join(out) + "\n")
    return edited


def chunk_texts(embedder: Any, corpus: Path, size: int, overlap: int) -> list[str]:
    """The distinct texts a sync of `corpus` into an empty KB embeds, in the order it meets them."""
    from ragortune.documents.chunk import chunk_document
    from ragortune.documents.loaders import load_file

    texts: dict[str, str] = {}
    for doc in load_file(corpus):
        for chunk in chunk_document(doc, embedder.count_tokens, size, overlap):
            texts.setdefault(chunk.content_hash, chunk.embed_text)
    return list(texts.values())


@contextlib.contextmanager
def timed(seconds: dict[str, float], owner: Any, name: str, label: str) -> Iterator[None]:
    """Add the time spent in `owner.name` to `seconds[label]` while the block runs."""
    had_own = name in vars(owner)
    original = getattr(owner, name)
    original_raw = vars(owner)[name] if had_own else None

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - started

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        if had_own:
            setattr(owner, name, original_raw)
        else:
            delattr(owner, name)


@contextlib.contextmanager
def phases(seconds: dict[str, float], model: Any) -> Iterator[None]:
    """Where an ingest spends its time: the model's forward passes and the store's writes."""
    from ragortune.store.lance import LanceStore

    with contextlib.ExitStack() as stack:
        stack.enter_context(timed(seconds, model, "encode", "encode"))
        for method in ("add", "delete", "vectors_by_hash", "finish_write", "cleanup"):
            stack.enter_context(timed(seconds, LanceStore, method, f"store.{method}"))
        yield


def run_ours(embedder: Any, work: Path, lines: list[str], texts: list[str]) -> dict[str, Any]:
    from ragortune.kb import open_kb
    from ragortune.kb.sync import sync

    docs = work / "docs"
    docs.mkdir(exist_ok=True)
    corpus = docs / "corpus.jsonl"
    write_corpus(corpus, lines)

    full_phases: dict[str, float] = defaultdict(float)
    gc.collect()
    with phases(full_phases, embedder.model):
        started = time.perf_counter()
        kb = open_kb(work / "kb", embedder=embedder, create=True)
        full = sync(kb, [docs])
        full_s = time.perf_counter() - started
    if len(texts) != full.chunks_embedded:
        raise SystemExit(f"bench bug: {len(texts)} chunk texts, but the ingest embedded "
                         f"{full.chunks_embedded}")

    gc.collect()
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=False)
    raw_s = time.perf_counter() - started

    started = time.perf_counter()
    again = sync(open_kb(work / "kb", embedder=embedder), [docs])
    unchanged_s = time.perf_counter() - started
    if again.chunks_embedded or again.unchanged != len(lines):
        raise SystemExit(f"bench bug: the unchanged re-ingest did work: {again.to_json()}")

    edited = write_corpus(corpus, lines, edit=True)
    edit_phases: dict[str, float] = defaultdict(float)
    with phases(edit_phases, embedder.model):
        started = time.perf_counter()
        edit = sync(open_kb(work / "kb", embedder=embedder), [docs])
        edited_s = time.perf_counter() - started
    if edit.updated != edited:
        raise SystemExit(f"bench bug: {edited} documents edited, sync updated {edit.updated}")

    return {
        "documents": len(lines), "chunks": full.chunks_embedded,
        "embedding_tokens": full.embedding_tokens, "batch_size": embedder.batch_size,
        "chunk_size": kb.settings.chunk_size, "chunk_overlap": kb.settings.chunk_overlap,
        "full_ingest_s": full_s, "tokens_per_s": full.embedding_tokens / full_s,
        "full_phases_s": dict(full_phases),
        "raw_encode_s": raw_s, "raw_tokens_per_s": full.embedding_tokens / raw_s,
        "overhead": full_s / raw_s,
        "unchanged_s": unchanged_s, "unchanged_fraction": unchanged_s / full_s,
        "edited_documents": edited, "edited_chunks_embedded": edit.chunks_embedded,
        "edited_chunks_reused": edit.chunks_reused,
        "edited_s": edited_s, "edited_fraction": edited_s / full_s,
        "edited_phases_s": dict(edit_phases),
    }


def run_llamaindex(embedder: Any, work: Path, lines: list[str], chunk_size: int,
                   chunk_overlap: int) -> dict[str, Any]:
    from llama_index.core import Document
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.vector_stores import SimpleVectorStore

    model = embedder.model
    tokenizer = model.tokenizer

    class SameModel(BaseEmbedding):
        """The product's SentenceTransformer object, called the way LlamaIndex batches."""

        def _encode(self, texts: list[str]) -> list[list[float]]:
            return model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False).tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._encode(texts)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._encode([text])[0]

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._encode([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    documents = []
    for line in lines:
        row = json.loads(line)
        documents.append(Document(text=row["text"], metadata={"title": row.get("title") or ""},
                                  id_=str(row["_id"])))
    splitter = SentenceSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap,
        tokenizer=lambda text: tokenizer.encode(text, add_special_tokens=False))
    store = SimpleVectorStore()
    pipeline = IngestionPipeline(
        transformations=[splitter, SameModel(model_name="minilm", embed_batch_size=embedder.batch_size)],
        vector_store=store)
    spent: dict[str, float] = defaultdict(float)
    gc.collect()
    with timed(spent, model, "encode", "encode"):
        started = time.perf_counter()
        nodes = pipeline.run(documents=documents)
        persisting = time.perf_counter()
        store.persist(str(work / "llamaindex" / "vector_store.json"))
        seconds = time.perf_counter() - started
    spent["persist"] = started + seconds - persisting
    texts = [node.get_content(metadata_mode="embed") for node in nodes]
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return {"chunks": len(nodes), "embedding_tokens": tokens, "seconds": seconds,
            "tokens_per_s": tokens / seconds, "phases_s": dict(spent)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared/datasets/scifact"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    parser.add_argument("--no-llamaindex", action="store_true", help="skip the comparison")
    parser.add_argument("--runtimes", default="torch,onnx",
                        help="comma-separated: torch, onnx, onnx-int8 (same weights)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    dataset = Path(args.dataset)
    if not (dataset / "corpus.jsonl").is_file():
        print(f"no BEIR corpus at {dataset / 'corpus.jsonl'}: pass --dataset DIR", file=sys.stderr)
        sys.exit(2)
    if not args.no_llamaindex and importlib.util.find_spec("llama_index.core") is None:
        print("llama-index-core is not installed: `pip install llama-index-core`, "
              "or pass --no-llamaindex", file=sys.stderr)
        sys.exit(2)

    from ragortune.embed import LocalEmbedder, shipped_minilm_path
    from ragortune.embed_onnx import OnnxEmbedder
    from ragortune.kb import KBSettings

    loaders = {"torch": lambda: LocalEmbedder("minilm", shipped_minilm_path()),
               "onnx": lambda: OnnxEmbedder("minilm", shipped_minilm_path()),
               "onnx-int8": lambda: OnnxEmbedder("minilm-int8", shipped_minilm_path(), quantize=True)}
    runtimes = args.runtimes.split(",")
    if unknown := set(runtimes) - set(loaders):
        print(f"unknown runtime(s) {sorted(unknown)}: use {', '.join(loaders)}", file=sys.stderr)
        sys.exit(2)
    lines = corpus_lines(dataset, args.limit)
    started = time.perf_counter()
    import lancedb  # noqa: F401  (paid once per process, like the model load: reported apart)

    import_s = time.perf_counter() - started
    results: dict[str, Any] = {}
    theirs = None
    with tempfile.TemporaryDirectory(prefix="ragortune-bench-ingest-") as tmp:
        for runtime in runtimes:
            embedder = loaders[runtime]()
            work = Path(tmp) / runtime
            (work / "docs").mkdir(parents=True)
            defaults = KBSettings(embedder=embedder.name, dimension=embedder.dimension)
            write_corpus(work / "docs" / "corpus.jsonl", lines)
            texts = chunk_texts(embedder, work / "docs" / "corpus.jsonl",
                                defaults.chunk_size, defaults.chunk_overlap)
            # Warm-up, untimed: a runtime's first passes over new shapes are slower than later ones.
            embedder.model.encode(texts[:: max(1, len(texts) // (4 * embedder.batch_size))],
                                  batch_size=embedder.batch_size, show_progress_bar=False)
            ours = run_ours(embedder, work, lines, texts)
            ours["lancedb_import_s"] = import_s
            ours["hybrid_ndcg@10"] = hybrid_ndcg(work / "kb", embedder, dataset)
            results[runtime] = ours
            if not args.no_llamaindex and theirs is None and runtime == "torch":
                theirs = run_llamaindex(embedder, work, lines, ours["chunk_size"],
                                        ours["chunk_overlap"])
    result: dict[str, Any] = {"dataset": str(dataset), "runtimes": results, "llamaindex": theirs,
                              "targets": TARGETS}
    if theirs:
        result["llamaindex_over_ours"] = {rt: theirs["seconds"] / o["full_ingest_s"]
                                          for rt, o in results.items()}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for runtime, ours in results.items():
        print(f"\n== runtime {runtime}")
        report({"ours": ours, "llamaindex": theirs,
                "llamaindex_over_ours": (result.get("llamaindex_over_ours") or {}).get(runtime)})
    print(f"\n{'runtime':<11}{'ingest s':>10}{'tokens/s':>10}{'raw encode s':>14}"
          f"{'vs LlamaIndex':>15}{'hybrid nDCG@10':>16}")
    for runtime, o in results.items():
        ratio = (result.get("llamaindex_over_ours") or {}).get(runtime)
        print(f"{runtime:<11}{o['full_ingest_s']:>10.2f}{o['tokens_per_s']:>10.0f}"
              f"{o['raw_encode_s']:>14.2f}{(f'{ratio:.2f}x' if ratio else '-'):>15}"
              f"{o['hybrid_ndcg@10']:>16.4f}")


def hybrid_ndcg(kb_path: Path, embedder: Any, dataset: Path) -> float:
    """nDCG@10 of the default hybrid search over all the data set's test queries."""
    from ragortune.evaluate.datasets import load_dataset
    from ragortune.evaluate.retrieval import run_queries
    from ragortune.kb import open_kb

    kb = open_kb(kb_path, embedder=embedder)
    return float(run_queries(kb, load_dataset(dataset), mode="hybrid", ks=(10,)).means()["ndcg@10"])

def _phases(seconds: dict[str, float], total: float) -> str:
    """`encode 95.1 %, store.finish_write 0.4 %, other 4.5 %` for one timed run."""
    parts = [f"{name} {seconds[name]:.2f} s" for name in sorted(seconds, key=seconds.get, reverse=True)
             if seconds[name] >= 0.005]
    parts.append(f"other {total - sum(seconds.values()):.2f} s")
    return ", ".join(parts)


def report(result: dict[str, Any]) -> None:
    o, li = result["ours"], result["llamaindex"]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"SciFact {o['documents']} documents -> {o['chunks']} chunks, "
          f"{o['embedding_tokens']:,} embedding tokens (chunk {o['chunk_size']}/{o['chunk_overlap']}, "
          f"batch {o['batch_size']}); lancedb import {o['lancedb_import_s']:.2f} s, not timed below")
    print(f"1. full ingest       {o['full_ingest_s']:8.2f} s   {o['tokens_per_s']:8.0f} tokens/s")
    print(f"   in it: {_phases(o['full_phases_s'], o['full_ingest_s'])}")
    print(f"2. raw encode        {o['raw_encode_s']:8.2f} s   {o['raw_tokens_per_s']:8.0f} tokens/s   "
          f"overhead {o['overhead']:.3f} (<= {TARGETS['overhead']:.2f} "
          f"{verdict(o['overhead'] <= TARGETS['overhead'])})")
    print(f"3. unchanged again   {o['unchanged_s']:8.2f} s   {100 * o['unchanged_fraction']:7.2f} % of full "
          f"(<= {100 * TARGETS['unchanged']:.0f} % {verdict(o['unchanged_fraction'] <= TARGETS['unchanged'])})")
    print(f"4. {o['edited_documents']} docs edited {o['edited_s']:8.2f} s   {100 * o['edited_fraction']:7.2f} % of full "
          f"(<= {100 * TARGETS['edited']:.0f} % {verdict(o['edited_fraction'] <= TARGETS['edited'])}); "
          f"{o['edited_chunks_embedded']} chunks embedded, {o['edited_chunks_reused']} reused")
    print(f"   in it: {_phases(o['edited_phases_s'], o['edited_s'])}")
    if li and result["llamaindex_over_ours"]:
        ratio = result["llamaindex_over_ours"]
        print(f"5. LlamaIndex        {li['seconds']:8.2f} s   {li['tokens_per_s']:8.0f} tokens/s   "
              f"({li['chunks']} chunks, {li['embedding_tokens']:,} tokens); ours is {ratio:.2f}x faster "
              f"(>= {TARGETS['llamaindex']:.1f} {verdict(ratio >= TARGETS['llamaindex'])})")
        print(f"   in it: {_phases(li['phases_s'], li['seconds'])}")


if __name__ == "__main__":
    main()
