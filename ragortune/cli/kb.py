"""Knowledge-base commands: ingest, search, status."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.text import Text

from ragortune.cli.app import (
    JSON_OPTION,
    app,
    console,
    emit_json,
    print_warning,
    progress_bar,
    sync_progress,
    table,
)
from ragortune.config import load_settings

KB_OPTION = typer.Option(None, "--kb", help="Knowledge-base folder [env RAGORTUNE_KB; default .ragortune]")
STORE_OPTION = typer.Option(None, "--store", help="postgresql://... keeps the KB named --kb in "
                            "PostgreSQL [env RAGORTUNE_STORE_URL; default: the --kb folder]")


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (walked recursively)."),
    kb: str | None = KB_OPTION,
    store: str | None = STORE_OPTION,
    embedder: str | None = typer.Option(None, help="minilm | st:<model> | openai:<model>"),
    chunk_size: int | None = typer.Option(None, help="Tokens per chunk (default 240)."),
    chunk_overlap: int | None = typer.Option(None, help="Tokens shared by neighbours (default 30)."),
    batch_size: int = typer.Option(1024, help="Chunks per commit; a killed run loses at most one batch."),
    ray: str | None = typer.Option(
        None, "--ray", metavar="ADDRESS", help="Load, chunk and embed on Ray: 'local' starts "
        "Ray here, 'auto' or ray://host:10001 joins a cluster (needs ragortune[scale])."),
    workers: int = typer.Option(2, help="With --ray: embedder actors (one GPU each if any)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Add, update and delete documents so the KB matches PATHS; only changed text is embedded."""
    from ragortune.documents.chunk import check_sizes
    from ragortune.documents.loaders import check_sources
    from ragortune.kb import open_kb
    from ragortune.kb.ray_engine import RayEngine
    from ragortune.kb.sync import sync

    settings = load_settings({"kb": kb, "store_url": store, "embedder": embedder,
                              "chunk_size": chunk_size, "chunk_overlap": chunk_overlap})
    check_sizes(settings.chunk_size, settings.chunk_overlap)
    check_sources(paths)  # before a KB is created: a typo must not leave an empty one behind
    given = settings.model_fields_set  # only what the user set is checked against an existing KB
    base = open_kb(settings.kb, create=True, store=settings.store_url,
                   embedder=settings.embedder if "embedder" in given else None,
                   chunk_size=settings.chunk_size if "chunk_size" in given else None,
                   chunk_overlap=settings.chunk_overlap if "chunk_overlap" in given else None)
    engine = RayEngine(ray, workers) if ray else None
    with progress_bar(json_output) as progress:
        on_progress = None
        if progress is not None:
            on_progress = sync_progress(progress, progress.add_task("ingest", total=None),
                                        "ingest")
        report = sync(base, paths, batch_chunks=batch_size, engine=engine,
                      on_progress=on_progress)
    if json_output:
        emit_json(report.to_json())
        return
    docs = report.to_json()["documents"]
    console.print(
        f"documents: {docs['added']} added, {docs['updated']} updated, {docs['unchanged']} unchanged, "
        f"{docs['deleted']} deleted, {docs['skipped']} skipped")
    console.print(f"chunks: {report.chunks_embedded} embedded ({report.embedding_tokens:,} tokens), "
                  f"{report.chunks_reused} reused, {report.chunks_deleted} deleted "
                  f"in {report.seconds:.1f} s")
    for skipped in report.skipped:
        print_warning(f"{skipped.path}: {skipped.reason}", label="  skipped")


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int | None = typer.Option(None, "-k", help="Number of hits (default 5)."),
    mode: str | None = typer.Option(None, help="dense | bm25 | hybrid (default hybrid)."),
    min_score: float | None = typer.Option(
        None, help="Drop hits whose cosine similarity is below this (every mode). Without it, "
                   "hits below the KB's calibrated threshold are shown and marked (`ask` would "
                   "abstain on them); --mode bm25 then embeds nothing: no similarity, no mark."),
    kb: str | None = KB_OPTION,
    store: str | None = STORE_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Search the knowledge base; hits carry score, similarity, source, heading and text."""
    from ragortune.kb import open_kb
    from ragortune.retrieve import search

    settings = load_settings({"kb": kb, "store_url": store, "k": k, "mode": mode,
                              "min_score": min_score})
    base = open_kb(settings.kb, store=settings.store_url)
    # A threshold the user set filters; the KB's calibrated one only marks: it is the gate
    # `ask` abstains behind, and a search that silently shows nothing hides the best hit.
    threshold = settings.min_score
    gate = base.settings.min_score if threshold is None else None
    hits = search(base, query, k=settings.k, mode=settings.mode, min_score=threshold)
    # A bm25 search without --min-score embeds nothing (no model to load), so it has no
    # similarity to hold against the gate: it says so rather than marking nothing.
    measured = not hits or hits[0].similarity is not None
    below = [None if hit.similarity is None else gate is not None and hit.similarity < gate
             for hit in hits]
    if json_output:
        emit_json({"query": query, "mode": settings.mode, "min_score": threshold,
                   "calibrated_threshold": gate,
                   "hits": [{**asdict(hit), "below_threshold": flag}
                            for hit, flag in zip(hits, below)]})
        return
    if not hits:
        console.print("no hits" + (f" with similarity >= {threshold}" if threshold is not None else ""))
        return
    if not measured and gate is not None:
        console.print(f"bm25 search: similarities not computed, the calibrated threshold "
                      f"{gate:.3f} is not applied (`ask` applies it; --min-score computes them)",
                      style="yellow", highlight=False)
    for rank, (hit, flag) in enumerate(zip(hits, below), start=1):
        where = f"{hit.source}" + (f" § {hit.heading}" if hit.heading else "")
        similarity = "-" if hit.similarity is None else f"{hit.similarity:.3f}"
        line = Text.assemble((f"{rank}.", "bold"),
                             f" score {hit.score:.4f}  similarity {similarity}  ",
                             (where, "cyan"),
                             (f"  (below the calibrated threshold {gate:.3f}: `ask` would "
                              "abstain)" if flag else "", "yellow"))
        console.print(line, highlight=False)
        console.print(f"   {hit.text[:300]}{'…' if len(hit.text) > 300 else ''}", highlight=False,
                      markup=False)


@app.command()
def status(kb: str | None = KB_OPTION, store: str | None = STORE_OPTION,
           json_output: bool = JSON_OPTION) -> None:
    """Documents, chunks, embedder, size on disk and last sync of a knowledge base."""
    from ragortune.kb import open_kb

    settings = load_settings({"kb": kb, "store_url": store})
    info = open_kb(settings.kb, store=settings.store_url).status()
    if json_output:
        emit_json(info)
        return
    rows = []
    for key, value in info.items():
        if key == "size_bytes":
            shown = f"{value / 1e6:.2f} MB"
        elif value is None:
            shown = {"min_score": "not calibrated (ragortune calibrate sets it)",
                     "last_sync": "never"}.get(key, "-")
        else:
            shown = str(value)
        rows.append((key.replace("_", " "), Text(shown)))
    console.print(table(("setting", "value"), rows, show_header=False, box_style=None))
