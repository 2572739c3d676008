"""`ragortune eval retrieval`: retrieval metrics on a BEIR data set, one row per sweep configuration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from ragortune.cli.app import (
    DATASET_OPTION,
    JSON_OPTION,
    NARROW,
    OUT_OPTION,
    WORK_OPTION,
    console,
    emit_json,
    eval_app,
    print_warning,
    progress_bar,
    sync_progress,
    table,
)
from ragortune.errors import InputError


def parse_cutoffs(values: list[str]) -> list[int]:
    """`-k 1,5 -k 10` -> [1, 5, 10]."""
    try:
        ks = sorted({int(v) for value in values for v in value.split(",") if v.strip()})
    except ValueError:
        raise InputError(f"-k {' '.join(values)}: cutoffs must be integers like 1,5,10,100"
                         ) from None
    if not ks or ks[0] < 1:
        raise InputError(f"-k {' '.join(values)}: cutoffs must be positive integers")
    return ks


@eval_app.command("retrieval")
def retrieval_command(
    dataset: Path = DATASET_OPTION,
    split: str = typer.Option("test", help="Which qrels/<split>.tsv to score against."),
    mode: str | None = typer.Option(None, help="dense | bm25 | hybrid [default: hybrid]."),
    k: list[str] = typer.Option(["1,5,10,100"], "-k", help="Recall and hit-rate cutoffs."),
    kb: Path | None = typer.Option(None, "--kb", help="Evaluate in this KB folder (made if "
                                      "absent) [default: one per corpus and settings in WORK]."),
    work: Path = WORK_OPTION,
    out: Path | None = OUT_OPTION,
    embedder: str | None = typer.Option(None, help="minilm | st:<model> | openai:<model>."),
    chunk_size: int | None = typer.Option(None, help="Tokens per chunk [default: 240]."),
    chunk_overlap: int | None = typer.Option(None, help="Tokens shared by neighbours."),
    min_score: float | None = typer.Option(None, help="Drop hits under this cosine "
                                              "similarity [default: no gate]."),
    sweep: list[str] = typer.Option([], "--sweep", help='One row per configuration, e.g. '
                                    '"chunk_size=128,256,512 mode=dense,bm25,hybrid k=3,5,10".'),
    json_output: bool = JSON_OPTION,
) -> None:
    """Index the corpus, run every judged query, report nDCG@10, MRR@10, recall@k, hit rate."""
    from ragortune.config import load_settings
    from ragortune.documents.chunk import check_sizes
    from ragortune.evaluate.datasets import load_dataset
    from ragortune.evaluate.evidence import dataset_info, run_id, update_evidence, write_csv
    from ragortune.evaluate.heldout import choose_out_of_sample, retrieval_figures
    from ragortune.evaluate.retrieval import (
        SELECT_BY,
        best_of,
        parse_sweep,
        sweep_configs,
        sweep_rows,
    )
    from ragortune.io import utc_now

    started_at, started = utc_now(), time.perf_counter()
    settings = load_settings({"embedder": embedder, "chunk_size": chunk_size,
                              "chunk_overlap": chunk_overlap, "mode": mode})
    grid = parse_sweep(sweep)
    ks = sorted(set(parse_cutoffs(k)) | set(grid.get("k", [])))
    if kb is not None and {"embedder", "chunk_size", "chunk_overlap"} & grid.keys():
        raise InputError("--sweep over embedder or chunking builds one KB per configuration: "
                         "drop --kb (KBs are kept under --work)")
    defaults = {key: getattr(settings, key) for key in ("embedder", "chunk_size",
                                                        "chunk_overlap", "mode")}
    configs = sweep_configs(grid, defaults)
    for config in configs:
        check_sizes(config["chunk_size"], config["chunk_overlap"])
    data = load_dataset(dataset, split=split)
    info = dataset_info(data)
    out_dir = out if out is not None else work / info["name"]

    runs = _run_configs(configs, kb, work, data, settings.model_fields_set, ks, min_score,
                        json_output)

    # A sweep picks its configuration on one half of the queries and is reported on the
    # other, so the chosen figure is not flattered by the choice; without a sweep, all count.
    ids = list(runs[0]["result"].metrics.query_ids)
    keep, split_name, tuned_on = None, "all", None
    if len(runs) > 1:
        best, tuned_on, keep = choose_out_of_sample(
            [r["result"].metrics.per_query for r in runs], ids, SELECT_BY)
        split_name = "held-out"
    else:
        best = best_of([r["result"] for r in runs])
    chosen = runs[best]
    result, base, report = chosen["result"], chosen["kb"], chosen["index"]
    rid = run_id("retrieval", started_at)
    figures = retrieval_figures(result.metrics.per_query, ids, keep=keep, split=split_name,
                                run=rid, dataset=info["hash"])
    rows = result.rows(data)
    files = {"per_query_csv": str(write_csv(out_dir / "retrieval.csv", rows))}
    sweep_table = None
    if grid:
        sweep_table = [row for r in runs
                       for row in sweep_rows(r["config"], r["result"], grid.get("k"))]
        files["sweep_csv"] = str(write_csv(out_dir / "retrieval-sweep.csv", sweep_table))
    status = base.status()
    run = {
        "run_id": rid,
        "started_at": started_at,
        "settings": {**chosen["config"], **result.settings, "split": split},
        "selected_by": (f"best {SELECT_BY} of the sweep on {len(tuned_on)} of {len(ids)} "
                        f"queries (seeded half); evidence reports the other {len(keep)}"
                        if tuned_on is not None and keep is not None else None),
        "models": {"embedder": status["embedder"], "dimension": status["dimension"]},
        "kb": {key: status[key] for key in ("kb", "documents", "chunks", "chunk_size",
                                            "chunk_overlap", "store_version", "size_bytes")},
        # up_to_date: an earlier run built this KB; nothing was embedded now.
        "index": {**report.to_json(), "up_to_date": not (report.added or report.updated
                                                        or report.deleted)},
        "timings_s": {"index": round(report.seconds, 3),
                      "embed_queries": round(result.embed_seconds, 3),
                      "search": round(result.search_seconds, 3),
                      "total": round(time.perf_counter() - started, 3)},
        "usage": {"embedding_tokens_index": report.embedding_tokens,
                  "embedding_tokens_per_query": result.usage()["embedding_tokens_per_query"]},
        "latency_ms": result.usage()["latency_ms"],
        "queries": len(rows),
        "files": files,
        "warnings": data.warnings,
    }
    evidence = update_evidence(out_dir, {"retrieval": figures, "run": run,
                                         "sweep": sweep_table}, "retrieval", dataset=info)
    files["evidence"] = str(evidence)

    if json_output:
        emit_json({"dataset": info, "settings": run["settings"], "metrics": result.means(),
                   "latency_ms": run["latency_ms"], "index": run["index"], "kb": run["kb"],
                   "timings_s": run["timings_s"], "files": files, "warnings": data.warnings,
                   "figures": figures,
                   "sweep": sweep_table, "queries": rows})
        return
    _print_retrieval(info, run, result.means(), sweep_table)


def _run_configs(configs: list[dict[str, Any]], kb: Path | None, work: Path, data: Any,
                 given: set[str], ks: list[int], min_score: float | None,
                 json_output: bool) -> list[dict[str, Any]]:
    """Index and query once per configuration, with a progress bar at a terminal."""
    from ragortune.evaluate.retrieval import index_dataset, open_eval_kb, run_queries

    runs: list[dict[str, Any]] = []
    built: dict[str, Any] = {}  # KB location -> the report of indexing it in this run
    with progress_bar(json_output) as progress:
        for config in configs:
            label = " ".join(f"{key}={value}" for key, value in config.items())
            base = open_eval_kb(kb, work, data, config, given)
            report = built.get(str(base.path))
            # Configurations that differ only in search settings share one KB: it is indexed
            # once, and each of them reports that indexing, not a second pass that found
            # nothing to do ("0 chunks embedded in 0.0 s").
            if report is None:
                task = progress.add_task(f"index {label}", total=None) if progress else None
                report = index_dataset(base, data, on_progress=sync_progress(
                    progress, task, f"index {label}") if progress else None)
                built[str(base.path)] = report
                if progress:
                    progress.update(task, visible=False)
            task = progress.add_task(f"queries {label}", total=len(data.qrels)) if progress else None
            result = run_queries(
                base, data, mode=config["mode"], ks=ks, min_score=min_score,
                on_progress=(lambda done, total, t=task: progress.update(t, completed=done))
                if progress else None)
            runs.append({"config": config, "kb": base, "index": report, "result": result})
    return runs


def _print_retrieval(info: dict[str, Any], run: dict[str, Any], means: dict[str, float],
                     sweep_table: list[dict[str, Any]] | None) -> None:
    s = run["settings"]
    console.print(f"[bold]{info['name']}[/bold] ({info['judged_queries']} judged queries, "
                  f"{info['documents']} documents): mode {s['mode']}, {s['embedder']}, chunks "
                  f"{s['chunk_size']}/{s['chunk_overlap']}", highlight=False)
    for warning in run["warnings"]:
        print_warning(warning)
    console.print(table(("metric", "mean"), [(name, f"{value:.4f}")
                                             for name, value in means.items()], numeric=("mean",)))
    idx, lat = run["index"], run["latency_ms"]
    if idx["up_to_date"]:
        built = (f"index: up to date, {idx['documents']['unchanged']:,} documents embedded by "
                 f"an earlier run (checked in {idx['seconds']:.1f} s)")
    else:
        built = (f"index: {idx['chunks_embedded']:,} chunks embedded "
                 f"({idx['embedding_tokens']:,} tokens), {idx['chunks_reused']:,} reused in "
                 f"{idx['seconds']:.1f} s")
    console.print(f"{built}; search latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms",
                  highlight=False)
    if sweep_table:
        columns = [c for c in sweep_table[0] if c in ("embedder", "chunk_size", "chunk_overlap",
                                                      "mode", "k", "ndcg@10", "mrr@10", "recall",
                                                      "hit_rate", "recall@10")]
        # Settings that do not vary would repeat one value on every row: a narrow terminal
        # drops those columns (the heading line above names them).
        if console.width < NARROW:
            columns = [c for c in columns if c not in ("embedder", "chunk_size", "chunk_overlap",
                                                       "mode", "k")
                       or len({str(row[c]) for row in sweep_table}) > 1]
        console.print(table(columns, [
            [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
            for row in sweep_table],
            numeric=[c for c in columns if isinstance(sweep_table[0][c], (int, float))],
            title="sweep"))
    for name, path in run["files"].items():
        console.print(f"{name.replace('_', ' ')}: {path}", highlight=False)
