"""`ragortune eval answers` (arms side by side), `eval update` (knowledge update), `synth`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import typer

from ragortune.cli.app import (
    JSON_OPTION,
    OUT_OPTION,
    WORK_OPTION,
    app,
    console,
    emit_json,
    eval_app,
    progress_bar,
    table,
)

ARMS_OPTION = typer.Option("base,rag", "--arms", help="Comma-separated: base, rag, ft, hybrid "
                           "(ft and hybrid need --adapter).")
LLM_OPTION = typer.Option(None, "--llm", help="smollm2 | hf:<id or path> | llamacpp[:<gguf>] | "
                          "openai:<model> [default: smollm2].")
ADAPTER_OPTION = typer.Option(None, "--adapter", help="LoRA adapter folder for ft and hybrid.")
K_OPTION = typer.Option(None, "-k", help="Chunks given as context [default: 3, as `ask`].")
MODE_OPTION = typer.Option(None, "--mode", help="dense | bm25 | hybrid [default: hybrid].")
MIN_SCORE_OPTION = typer.Option(None, "--min-score", help="Abstain without calling the model "
                                "when no chunk reaches this similarity [default: the KB's].")
MAX_TOKENS_OPTION = typer.Option(64, "--max-tokens", help="Longest answer, in tokens.")
LIMIT_OPTION = typer.Option(None, "--limit", help="Only the first N labelled questions.")
EMBEDDER_OPTION = typer.Option(None, "--embedder", help="minilm | st:<model> | openai:<model>.")


def _settings(llm: str | None, k: int | None, mode: str | None, embedder: str | None) -> Any:
    from ragortune.config import load_settings
    from ragortune.rag import CONTEXT_K

    settings = load_settings({"llm": llm, "k": k, "mode": mode, "embedder": embedder})
    if "k" not in settings.model_fields_set:
        settings.k = CONTEXT_K  # the arms answer as `ragortune ask` does
    return settings


def _loader(llm: str) -> Any:
    from ragortune.generate import load_llm

    return lambda adapter: load_llm(llm, adapter=adapter)


def _arms(spec: str, llm: str, adapter: Path | None) -> list[Any]:
    from ragortune.evaluate.arms import make_arms, parse_arms

    return make_arms(parse_arms(spec), _loader(llm), str(adapter) if adapter else None)


def _train_progress(progress: Any) -> Any:
    if progress is None:
        return None
    task = progress.add_task("retrain", total=None)

    def update(p: Any) -> None:
        progress.update(task, completed=p.step, total=p.total_steps,
                        description=f"retrain (loss {p.loss:.3f})" if p.loss is not None
                        else "retrain")

    return update


def _answer_progress(progress: Any) -> Any:
    if progress is None:
        return None
    tasks: dict[str, Any] = {}

    def update(arm: str, done: int, total: int) -> None:
        if arm not in tasks:
            tasks[arm] = progress.add_task(f"answers {arm}", total=total)
        progress.update(tasks[arm], completed=done)

    return update


def _arm_table(title: str, summary: dict[str, dict[str, Any]], extra: dict[str, Any] | None = None
               ) -> None:
    def fmt(x: Any, digits: int = 3) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    columns = ("arm", "accuracy", "EM", "F1", "abstain P/R", "cites ok", "p50 ms", "p95 ms",
               "prompt tok", "compl tok")
    rows = []
    for arm, s in summary.items():
        ab, lat, tok = s["abstention"], s["latency_ms"], s["tokens_per_query"]
        rows.append((arm, fmt(s["accuracy"]), fmt(s["exact_match"]), fmt(s["f1"]),
                     f"{fmt(ab['precision'], 2)}/{fmt(ab['recall'], 2)}",
                     fmt(s["citation_support_rate"]), fmt(lat["p50"], 0), fmt(lat["p95"], 0),
                     fmt(tok["prompt"], 0), fmt(tok["completion"], 0)))
    console.print(table(columns, rows, numeric=columns[1:], title=title,
                        optional=("EM", "p95 ms", "prompt tok", "compl tok")))



def _questions_of(dataset: Path | None, questions_file: Path | None, split: str
                  ) -> tuple[Any, list[Any]]:
    """The BEIR data set (its qrels when the split has them) or the plain questions file."""
    from ragortune.evaluate.datasets import load_dataset
    from ragortune.questions import read_questions

    if dataset is not None:
        has_qrels = (dataset / "qrels" / f"{split}.tsv").is_file()
        data = load_dataset(dataset, split=split if has_qrels else None)
        return data, list(data.queries.values())
    assert questions_file is not None
    return None, read_questions(questions_file)

@eval_app.command("answers")
def answers_command(
    dataset: Path | None = typer.Option(None, "--dataset", help="BEIR folder: corpus.jsonl, "
                                        "queries.jsonl, qrels/<split>.tsv (or give --questions "
                                        "and --kb)."),
    questions_file: Path | None = typer.Option(None, "--questions", help="Questions JSONL "
                                               "(_id, text, answers) asked against the existing "
                                               "--kb as it is (e.g. one built with `ingest`)."),
    arms: str = ARMS_OPTION,
    split: str = typer.Option("test", help="qrels/<split>.tsv, used for citation support "
                              "when present."),
    llm: str | None = LLM_OPTION,
    adapter: Path | None = ADAPTER_OPTION,
    k: int | None = K_OPTION,
    mode: str | None = MODE_OPTION,
    min_score: float | None = MIN_SCORE_OPTION,
    max_tokens: int = MAX_TOKENS_OPTION,
    limit: int | None = LIMIT_OPTION,
    kb: Path | None = typer.Option(None, "--kb", help="KB folder [default: cached in WORK]; "
                                   "with --questions, the KB to answer from."),
    work: Path = WORK_OPTION,
    out: Path | None = OUT_OPTION,
    embedder: str | None = EMBEDDER_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Answer every labelled question with each arm: accuracy, abstention, citations, cost."""
    from ragortune.errors import InputError
    from ragortune.evaluate.arms import labelled_questions, run_arms, summarise
    from ragortune.evaluate.evidence import (
        dataset_info,
        questions_info,
        run_id,
        update_evidence,
        write_csv,
    )
    from ragortune.evaluate.heldout import arms_evidence, gate_for
    from ragortune.evaluate.retrieval import index_dataset, open_eval_kb
    from ragortune.io import utc_now

    if (dataset is None) == (questions_file is None):
        raise InputError("give either --dataset DIR (a BEIR folder) or --questions FILE with "
                         "--kb DIR (an existing knowledge base)")
    started_at, started = utc_now(), time.perf_counter()
    settings = _settings(llm, k, mode, embedder)
    data, queries = _questions_of(dataset, questions_file, split)
    questions = labelled_questions(queries)[:limit]
    chosen = _arms(arms, settings.llm, adapter)
    config = {key: getattr(settings, key) for key in ("embedder", "chunk_size", "chunk_overlap")}
    base = None
    report = None
    if any(arm.retrieval for arm in chosen):
        if data is not None:
            base = open_eval_kb(kb, work, data, config, settings.model_fields_set)
            report = index_dataset(base, data)
        else:
            base = _existing_kb(kb)
    if base is not None:  # the KB decides how it is chunked and embedded
        config = {key: getattr(base.settings, key)
                  for key in ("embedder", "chunk_size", "chunk_overlap")}
    with progress_bar(json_output) as progress:
        rows = run_arms(chosen, questions, base, k=settings.k, mode=settings.mode,
                        min_score=min_score, max_tokens=max_tokens,
                        qrels=data.qrels if data is not None else None,
                        on_progress=_answer_progress(progress))
    summary = summarise(rows)
    for arm in chosen:
        summary[arm.name]["model"] = {"llm": settings.llm, "adapter": arm.adapter}
    threshold = min_score if min_score is not None else (base.settings.min_score if base else None)
    gate = gate_for(base, questions, k=settings.k, mode=settings.mode) \
        if base is not None and threshold is not None else None
    info = (dataset_info(data) if data is not None
            else questions_info(questions_file, len(queries), base))
    rid = run_id("answers", started_at)
    scores, figures, comparisons = arms_evidence(rows, chosen, summary, run=rid,
                                                 dataset=info["hash"], gate=gate)
    out_dir = out if out is not None else work / info["name"]
    csv_rows = [{**r.row(), "exposure": scores[r.arm].exposure.get(r.query_id, "")}
                for r in rows]
    files = {"answers_csv": str(write_csv(out_dir / "answers.csv", csv_rows))}
    run = {
        "run_id": rid,
        "started_at": started_at,
        "settings": {"arms": [a.name for a in chosen], "llm": settings.llm,
                     "adapter": str(adapter) if adapter else None, "k": settings.k,
                     "mode": settings.mode,
                     "min_score": min_score if min_score is not None or base is None
                     else base.settings.min_score,
                     "max_tokens": max_tokens, "limit": limit, **config},
        "index": report.to_json() if report else None,
        "kb": base.status() if base else None,
        "timings_s": {"total": round(time.perf_counter() - started, 3)},
        "questions": len(questions),
        "files": files,
    }
    files["evidence"] = str(update_evidence(
        out_dir, {"arms": figures, "comparisons": comparisons, "run": run}, "answers",
        dataset=info))
    if json_output:
        emit_json({"dataset": info, "settings": run["settings"], "arms": summary,
                   "figures": figures, "comparisons": comparisons, "files": files,
                   "answers": csv_rows})
        return
    _arm_table(f"{info['name']}: {len(questions)} labelled questions", summary)
    _figure_table(figures)
    _comparison_lines(comparisons)
    for name, path in files.items():
        console.print(f"{name.replace('_', ' ')}: {path}", highlight=False)


def _existing_kb(kb: Path | None) -> Any:
    from ragortune.errors import InputError
    from ragortune.kb import SETTINGS_FILE, open_kb

    if kb is None or not (kb / SETTINGS_FILE).is_file():
        raise InputError(f"--kb {kb}: no knowledge base there; --questions answers from an "
                         "existing KB: build one with `ragortune ingest DOCS --kb DIR`")
    return open_kb(kb)



def _check_update(v1: Path, v2: Path, arms: str, retrain: bool, adapter: Path | None) -> None:
    """Refuse what would fail later, before v1 is answered."""
    from ragortune.errors import InputError
    from ragortune.evaluate.arms import parse_arms

    for folder in (v1, v2):
        if not folder.is_dir():
            raise InputError(f"{folder}: folder not found; --v1 and --v2 take document folders")
    if retrain and not {"ft", "hybrid"} & set(parse_arms(arms)):
        raise InputError("--retrain retrains the fine-tuned arms: add ft or hybrid to --arms "
                         "(and give their --adapter)")
    if retrain and adapter is not None:
        from ragortune.tune.retrain import adapter_recipe

        adapter_recipe(adapter)  # fails now, not after answering v1, if it cannot be redone

@eval_app.command("update")
def update_command(
    v1: Path = typer.Option(..., "--v1", help="Documents before the update (a folder, or a "
                            "BEIR folder whose corpus.jsonl is used)."),
    v2: Path = typer.Option(..., "--v2", help="The same documents after the update."),
    questions_v1: Path = typer.Option(..., "--questions-v1", help="JSONL: _id, text, answers "
                                      "true for v1."),
    questions_v2: Path = typer.Option(..., "--questions-v2", help="The same _ids with the "
                                      "answers true for v2."),
    arms: str = ARMS_OPTION,
    llm: str | None = LLM_OPTION,
    adapter: Path | None = ADAPTER_OPTION,
    retrain: bool = typer.Option(False, "--retrain", help="After syncing v2, retrain the "
                                 "fine-tuned arms on the v2 questions (tune build + train with "
                                 "the --adapter's settings) and measure it; without it they "
                                 "answer v2 with the v1 adapter."),
    k: int | None = K_OPTION,
    mode: str | None = MODE_OPTION,
    min_score: float | None = MIN_SCORE_OPTION,
    max_tokens: int = MAX_TOKENS_OPTION,
    limit: int | None = LIMIT_OPTION,
    work: Path = WORK_OPTION,
    out: Path | None = typer.Option(None, "--out", help="Folder for evidence.json: give the "
                                    "`eval answers` folder to add stale rates to its arms "
                                    "[default: WORK/update-<v2 name>]."),
    embedder: str | None = EMBEDDER_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Answer on v1, sync v2 incrementally, answer again: new facts, stale answers, cost."""
    from ragortune.evaluate.arms import labelled_questions, summarise
    from ragortune.evaluate.evidence import (
        file_sha256,
        run_id,
        update_evidence,
        update_info,
        write_csv,
    )
    from ragortune.evaluate.heldout import (
        adapter_training,
        compare_arms,
        evidence_arm,
        score_arms,
    )
    from ragortune.evaluate.update import evidence_arms, retrainer, run_update
    from ragortune.io import utc_now
    from ragortune.kb import open_kb
    from ragortune.questions import read_questions

    _check_update(v1, v2, arms, retrain, adapter)
    started_at, started = utc_now(), time.perf_counter()
    settings = _settings(llm, k, mode, embedder)
    q1 = labelled_questions(read_questions(questions_v1))[:limit]
    q2 = labelled_questions(read_questions(questions_v2))[:limit]
    chosen = _arms(arms, settings.llm, adapter)
    root = work / f"update-{v2.resolve().name}"
    if root.exists():
        shutil.rmtree(root)  # the test must start from v1, never from a previous run's v2
    base = open_kb(root / "kb", create=True, embedder=settings.embedder,
                   chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    with progress_bar(json_output) as progress:
        result = run_update(
            base, root / "docs", v1, v2, q1, q2, chosen, k=settings.k, mode=settings.mode,
            min_score=min_score, max_tokens=max_tokens,
            retrain=retrainer(questions_v2, root / "retrain", _train_progress(progress))
            if retrain else None,
            load=_loader(settings.llm), on_progress=_answer_progress(progress))
    per_arm = result.per_arm(chosen, q2)
    info = update_info(questions_v1, questions_v2, v1, v2)
    rid = run_id("update", started_at)
    # v2 figures: a retrained arm is scored against the record of the adapter it now runs
    adapter_v2 = result.retraining.adapter if result.retraining else None
    records = {a.name: adapter_training(adapter_v2 or a.adapter) for a in chosen if a.adapter}
    scores = score_arms(result.after, records, set(records))
    comparisons = [c.to_json() for c in compare_arms(result.after, scores)]
    summary_v2 = summarise(result.after)
    stale = evidence_arms(per_arm, run=rid, dataset=info["hash"])
    figures = {a.name: {**evidence_arm(scores[a.name], summary_v2[a.name], run=rid,
                                       dataset=info["hash"]), **stale.get(a.name, {})}
               for a in chosen}
    out_dir = out if out is not None else root
    rows = ([{"version": "v1", **r.row()} for r in result.before]
            + [{"version": "v2", **r.row()} for r in result.not_retrained + result.after])
    files = {"answers_csv": str(write_csv(out_dir / "update-answers.csv", rows))}
    update = {
        "run_id": rid,
        "started_at": started_at,
        "data": {"v1": str(v1.resolve()), "v2": str(v2.resolve()),
                 "questions_v1": {"path": str(questions_v1), "sha256": file_sha256(questions_v1)},
                 "questions_v2": {"path": str(questions_v2), "sha256": file_sha256(questions_v2)}},
        "settings": {"arms": [a.name for a in chosen], "llm": settings.llm,
                     "adapter": str(adapter) if adapter else None, "retrain": retrain,
                     "k": settings.k, "mode": settings.mode, "min_score": min_score,
                     "max_tokens": max_tokens, "embedder": settings.embedder,
                     "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
                     "limit": limit},
        "new_facts": len(result.changed),
        "index_v1": result.index_v1.to_json(),
        "index_v2": result.index_v2.to_json(),
        "retraining": result.retraining.cost if result.retraining else None,
        "arms": per_arm,
        "summary": result.summaries(),
        "figures": figures,
        "comparisons": comparisons,
        "timings_s": {"total": round(time.perf_counter() - started, 3)},
        "files": files,
    }
    files["evidence"] = str(update_evidence(
        out_dir, {"update": update, "arms": figures, "comparisons": comparisons}, "update",
        dataset=info))
    if json_output:
        emit_json({**update, "answers": rows})
        return
    _print_update(update)


def _ci(fig: dict[str, Any] | None) -> str:
    if not fig or fig.get("value") is None:
        return "-"
    return f"{fig['value']:.2f} [{fig['low']:.2f}, {fig['high']:.2f}] n={fig['n']}"


def _figure_table(figures: dict[str, dict[str, Any]]) -> None:
    """Accuracy on what each arm never trained on, beside what it did, with 95% intervals."""
    rows = []
    for arm, f in figures.items():
        ab = f.get("abstention") or {}
        rows.append((arm, _ci(f["accuracy"]), _ci(f["accuracy_seen"]),
                     _ci(f["accuracy_unseen_phrasing"]), _ci(f["accuracy_unseen_fact"]),
                     _ci(ab.get("recall")) + (" (cv)" if "k" in ab else "")))
    # The intervals wrap at their spaces ("0.50 [0.30," over "0.70] n=20") rather than be cut.
    console.print(table(("arm", "accuracy", "seen (not counted)", "unseen phrasing",
                         "unseen fact", "abstention recall"), rows,
                        optional=("abstention recall", "seen (not counted)"),
                        title="accuracy with 95% intervals (fine-tuned arms: unseen questions "
                              "only)"))
    for arm, f in figures.items():
        if f.get("note"):
            console.print(f"{arm}: {f['note']}", markup=False, highlight=False)


def _comparison_lines(comparisons: list[dict[str, Any]]) -> None:
    for c in comparisons:
        console.print(f"{c['a']} vs {c['b']}: {c['diff']:+.2f} [{c['low']:+.2f}, "
                      f"{c['high']:+.2f}], McNemar p={c['p_value']:.3f} (Holm {c['p_holm']:.3f})"
                      f": {c['verdict']}", markup=False, highlight=False)


def _print_update(update: dict[str, Any]) -> None:
    idx = update["index_v2"]
    for version in ("v1", "v2"):
        summary = update["summary"][version]
        n = next(iter(summary.values()))["questions"] if summary else 0
        _arm_table(f"{version}: {n} labelled questions", summary)
    rows = []
    for arm, v in update["arms"].items():
        cost = v["update_cost"]
        seconds = cost.get("seconds")
        what = {"reindex": "re-index", "retrain": "retrain", "none": "cannot update",
                "reindex+retrain": "re-index + retrain"}[cost["kind"]]
        if arm.endswith("@v1"):  # a fine-tuned arm on its v1 adapter, before the retraining
            what = "re-index only" if cost["kind"] == "reindex" else "not retrained"
        if cost["estimated"]:
            what += " (est.)"
        rows.append((arm, *("-" if v[key] is None else f"{v[key]:.3f}" for key in
                            ("accuracy_v1", "accuracy_v2")),
                     _ci(v["new_fact_accuracy"]), _ci(v["stale_rate_changed"]),
                     _ci(v["stale_rate_withdrawn"]),
                     f"{what}" + (f", {seconds:.1f} s" if seconds else "")))
    console.print(table(("arm", "accuracy v1", "accuracy v2", "new facts", "stale (changed)",
                         "stale (withdrawn)", "update cost"), rows,
                        numeric=("accuracy v1", "accuracy v2"),
                        optional=("accuracy v2", "accuracy v1"),  # also in the v1/v2 tables
                        title=f"knowledge update: {update['new_facts']} new facts"))
    _figure_table(update["figures"])
    _comparison_lines(update["comparisons"])
    console.print(f"re-index (v2 by incremental sync): {idx['documents']['updated']} updated, "
                  f"{idx['documents']['added']} added, {idx['documents']['deleted']} deleted, "
                  f"{idx['documents']['unchanged']} unchanged; {idx['chunks_embedded']} chunks "
                  f"({idx['embedding_tokens']:,} embedding tokens) in {idx['seconds']:.1f} s",
                  highlight=False)
    r = update["retraining"]
    if r is not None:
        console.print(f"retrain (tune build + train on the v2 questions): {r['examples']} "
                      f"examples, {r['steps']} steps, {r['tokens']:,} training tokens in "
                      f"{r['seconds']:.1f} s ({r['cpu_seconds']:.0f} CPU s); adapter: "
                      f"{r['adapter']}", highlight=False)
    for name, path in update["files"].items():
        console.print(f"{name.replace('_', ' ')}: {path}", highlight=False)


@app.command("synth")
def synth_command(
    kb: Path = typer.Option(..., "--kb", help="Knowledge base whose chunks the questions come "
                            "from."),
    n: int = typer.Option(..., "--n", help="Question/answer pairs wanted."),
    llm: str | None = LLM_OPTION,
    out: Path = typer.Option(Path("synth"), "--out", help="BEIR folder to write."),
    seed: int = typer.Option(0, help="Chunk order; the same seed gives the same pairs."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Generate labelled questions from the KB's chunks (each chunk is its question's qrel)."""
    from ragortune.errors import InputError
    from ragortune.evaluate.synth import generate_pairs, write_beir
    from ragortune.generate import load_llm
    from ragortune.kb import open_kb

    settings = _settings(llm, None, None, None)
    base = open_kb(kb)
    model = load_llm(settings.llm)
    with progress_bar(json_output) as progress:
        task = progress.add_task("pairs kept", total=n) if progress else None
        result = generate_pairs(base, model, n, seed=seed, on_progress=(
            lambda kept, _total: progress.update(task, completed=kept)) if progress else None)
    if not result.pairs:
        raise InputError(f"no pair survived the checks in {result.attempts} tries "
                         f"({result.dropped}): try a larger model with --llm")
    paths = write_beir(out, base, result)
    payload = {"kept": len(result.pairs), "wanted": n, "attempts": result.attempts,
               "dropped": result.dropped, "llm": settings.llm,
               "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
               "files": {k: str(v) for k, v in paths.items()}}
    if json_output:
        emit_json(payload)
        return
    console.print(f"kept {len(result.pairs)} of {n} wanted pairs from {result.attempts} chunks "
                  f"(dropped: {', '.join(f'{k} {v}' for k, v in result.dropped.items())})",
                  highlight=False)
    console.print(f"data set: {out} (evaluate with `ragortune eval retrieval --dataset {out}`)",
                  highlight=False)
