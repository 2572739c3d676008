"""Answer commands: ask, calibrate, serve."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from ragortune.cli.app import JSON_OPTION, app, console, emit_json, err_console, table
from ragortune.cli.kb import STORE_OPTION
from ragortune.config import load_settings

if TYPE_CHECKING:
    from ragortune.config import Settings
    from ragortune.questions import Question
    from ragortune.rag import Answer

KB_OPTION = typer.Option(None, "--kb", help="Knowledge-base folder [env RAGORTUNE_KB; default .ragortune]")
LLM_OPTION = typer.Option(
    None, "--llm", help="smollm2 | hf:<id or path> | llamacpp[:<file.gguf>] | openai:<model> "
                        "[env RAGORTUNE_LLM; default smollm2]")
K_OPTION = typer.Option(None, "-k", help="Chunks retrieved as context [env RAGORTUNE_K; default 3].")
MODE_OPTION = typer.Option(None, "--mode", help="dense | bm25 | hybrid (default hybrid).")
ASK_QUESTIONS_OPTION = typer.Option(
    None, "--questions", help="Ask every question of a JSONL file (text, optional answers) "
                              "with one model load; prints a score when answers are given.")
CALIBRATE_QUESTIONS_OPTION = typer.Option(
    ..., "--questions", help="JSONL with text and answers ([] = the KB does not answer it).")


@app.command()
def ask(
    question: str | None = typer.Argument(None, help="The question."),
    questions: Path | None = ASK_QUESTIONS_OPTION,
    kb: str | None = KB_OPTION,
    store: str | None = STORE_OPTION,
    llm: str | None = LLM_OPTION,
    k: int | None = K_OPTION,
    mode: str | None = MODE_OPTION,
    min_score: float | None = typer.Option(
        None, help="Abstain when no chunk's similarity reaches this; defaults to the KB's "
                   "calibrated threshold (ragortune calibrate)."),
    on_empty: str = typer.Option(
        "abstain", help="When nothing passes the threshold: abstain (no LLM call) or model "
                        "(the model's own answer, marked as not from the knowledge base)."),
    max_tokens: int = typer.Option(64, help="Longest answer, in tokens."),
    adapter: str | None = typer.Option(None, help="LoRA adapter folder for a local model."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Answer from the knowledge base, citing numbered sources, or say it is not in there."""
    from ragortune import rag
    from ragortune.errors import InputError
    from ragortune.generate import load_llm
    from ragortune.judge import tally
    from ragortune.kb import open_kb
    from ragortune.questions import Question, read_questions

    if (question is None) == (questions is None):
        raise InputError("give either a QUESTION or --questions FILE")
    settings = load_settings({"kb": kb, "store_url": store, "llm": llm, "k": k, "mode": mode,
                              "min_score": min_score})
    batch = (read_questions(questions) if questions is not None
             else [Question("1", question or "")])
    base = open_kb(settings.kb, store=settings.store_url)
    model = None
    results = []
    for item in batch:
        context = rag.retrieve_context(base, item.text, k=_context_k(settings), mode=settings.mode,
                                       min_score=settings.min_score)
        if model is None and rag.needs_llm(context, on_empty):  # a gated abstention needs none
            model = load_llm(settings.llm, adapter=adapter)
        answer = rag.generate(context, model, on_empty=on_empty, max_tokens=max_tokens)  # type: ignore[arg-type]
        results.append((item, answer))
        if not json_output:
            if questions is not None:
                console.print(f"\n[bold]Q ({escape(item.id)}):[/bold] {escape(item.text)}",
                              highlight=False)
            _print_answer(answer, item if questions is not None else None)
    if questions is None:
        if json_output:
            emit_json(results[0][1].to_json())
        return
    summary = tally((q, a.text, a.abstained) for q, a in results)
    if json_output:
        emit_json({"answers": [{"_id": q.id, **a.to_json()} for q, a in results],
                   "summary": summary})
    elif summary["answerable"] or summary["unanswerable"]:
        console.print(f"\n[bold]{summary['answerable_correct']}/{summary['answerable']}[/bold] "
                      "answerable questions got an answer containing a gold answer; "
                      f"[bold]{summary['unanswerable_abstained']}/{summary['unanswerable']}[/bold] "
                      "unanswerable ones abstained")


def _context_k(settings: Settings) -> int:
    """The `k` setting when the user gave one; else 3, measured best for a small model."""
    from ragortune.rag import CONTEXT_K

    return settings.k if "k" in settings.model_fields_set else CONTEXT_K


def _print_answer(answer: Answer, item: Question | None = None) -> None:
    from ragortune.judge import verdict

    style = "yellow" if answer.abstained or not answer.grounded else "bold"
    right = verdict(answer.text, item.answers, answer.abstained) if item is not None else None
    mark = {True: "[green]✓[/green] ", False: "[red]✗[/red] ", None: ""}[right]
    console.print(f"{mark}[{style}]{escape(answer.text)}[/{style}]", highlight=False,
                  soft_wrap=True)
    for c in answer.citations:
        where = c.source + (f" § {c.heading}" if c.heading else "")
        how = ", inferred" if answer.citations_inferred else ""
        console.print(f"  [{c.n}] [cyan]{escape(where)}[/cyan] (similarity {c.similarity:.3f}{how})",
                      highlight=False)
    if answer.dropped_citations:
        dropped = ", ".join(f"[{n}]" for n in answer.dropped_citations)
        console.print(f"  [red]dropped citations {dropped}: they match no retrieved chunk[/red]")
    if answer.abstain_reason == "gate":
        best = f" (threshold {answer.threshold})" if answer.threshold is not None else ""
        console.print(f"  no chunk passed the similarity gate{best}; the LLM was not called")
    u = answer.usage
    console.print(
        f"  [dim]tokens: {u.embedding_tokens} embedding, {u.prompt_tokens} prompt, "
        f"{u.completion_tokens} completion · time: embed {u.embed_s:.3f} s, retrieve "
        f"{u.retrieve_s:.3f} s, generate {u.generate_s:.2f} s[/dim]", highlight=False)


@app.command()
def calibrate(
    questions: Path = CALIBRATE_QUESTIONS_OPTION,
    kb: str | None = KB_OPTION,
    store: str | None = STORE_OPTION,
    k: int | None = K_OPTION,
    mode: str | None = MODE_OPTION,
    save: bool = typer.Option(False, "--save", help="Write the threshold to the KB's settings "
                              "(ask, search and serve then use it)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Measure the similarity threshold that best separates answerable from unanswerable questions."""
    from ragortune.kb import open_kb
    from ragortune.questions import read_questions
    from ragortune.rag.calibrate import calibrate as run_calibration

    settings = load_settings({"kb": kb, "store_url": store, "k": k, "mode": mode})
    labelled = read_questions(questions, require_answers=True)
    base = open_kb(settings.kb, store=settings.store_url)
    result = run_calibration(base, labelled, k=_context_k(settings), mode=settings.mode)
    if save:
        base.settings.min_score = round(result.threshold, 4)
        base.save_settings()
    if json_output:
        emit_json({**result.to_json(), "saved": save})
        return
    payload = result.to_json()
    console.print(f"{payload['questions']} questions ({payload['answerable']} answerable, "
                  f"{payload['unanswerable']} unanswerable), {result.mode} top-{result.k}")
    columns = ("threshold", "abstain precision", "abstain recall", "F1", "answerable kept",
               "abstained")
    console.print(table(columns, [
        (f"{op.threshold:.3f}" + (" ← chosen" if chosen else ""), f"{op.precision:.2f}",
         f"{op.recall:.2f}", f"{op.f1:.2f}", f"{op.answered_recall:.2f}", str(op.abstained))
        for op, chosen in [(result.chosen, True), *((o, False) for o in result.others)]],
        numeric=columns))
    if save:
        where = base.path / "kb.json" if isinstance(base.path, Path) else "the KB's settings"
        console.print(f"saved min_score = {base.settings.min_score} to {where}", markup=False)
    else:
        console.print("add --save to store this threshold in the knowledge base")


@app.command()
def serve(
    kb: str | None = KB_OPTION,
    store: str | None = STORE_OPTION,
    llm: str | None = LLM_OPTION,
    host: str = typer.Option("127.0.0.1", help="Address to bind; off loopback a token is required."),
    port: int = typer.Option(8000, help="TCP port."),
    token: str | None = typer.Option(None, envvar="RAGORTUNE_API_TOKEN",
                                        help="Bearer token clients must send [env RAGORTUNE_API_TOKEN]."),
    k: int | None = K_OPTION,
    mode: str | None = MODE_OPTION,
    max_tokens: int = typer.Option(64, help="Default longest answer, in tokens."),
    access_log: bool = typer.Option(False, help="Log every request."),
) -> None:
    """Serve the KB over HTTP: OpenAI-compatible /v1/chat/completions, /v1/search, /v1/models."""
    import uvicorn

    from ragortune.server import check_bind, create_app

    settings = load_settings({"kb": kb, "store_url": store, "llm": llm, "k": k, "mode": mode})
    check_bind(host, token)  # before any model loads: a refused start should be instant
    err_console.print(f"loading knowledge base {settings.kb} and LLM {settings.llm} …")
    # --store names the database; the KB named --kb lives in it (the locator `URL#name`)
    locator = f"{settings.store_url}#{settings.kb}" if settings.store_url else settings.kb
    application = create_app(locator, settings.llm, token, k=_context_k(settings),
                             mode=settings.mode, max_tokens=max_tokens)
    err_console.print(f"serving on http://{host}:{port} (OpenAI base URL http://{host}:{port}/v1)"
                      + (", bearer token required" if token else ""))
    sys.stdout.flush()
    uvicorn.run(application, host=host, port=port, access_log=access_log,
                log_level="info" if access_log else "warning")  # access lines are INFO records
