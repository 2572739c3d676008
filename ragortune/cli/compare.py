"""`ragortune compare`: every stage in one command, then the report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from ragortune.cli.app import JSON_OPTION, app, console, emit_json, err_console, show_progress


@app.command("compare")
def compare_command(
    docs: Path = typer.Option(..., "--docs", help="Your documents (folder or file)."),
    out: Path = typer.Option(..., "--out", help="Folder for report.html, report.md, "
                             "evidence.json and the cached stages (reruns reuse them)."),
    questions: Path | None = typer.Option(None, "--questions", help="JSONL with text and "
                                          "answers [default: synthesised from the documents]."),
    docs_v2: Path | None = typer.Option(None, "--docs-v2", help="The next version of the "
                                        "documents: runs the knowledge-update test."),
    questions_v2: Path | None = typer.Option(None, "--questions-v2", help="The same _ids "
                                             "with the answers true for v2."),
    paraphrases: Path | None = typer.Option(None, "--paraphrases", help="JSONL {_id, "
                                            "paraphrases: [...]}: the fine-tuned arm trains "
                                            "on those of the trained facts and is asked the "
                                            "original wording."),
    scenario: Path | None = typer.Option(None, "--scenario", help="Scenario TOML for cost and "
                                         "the decision (examples/scenarios/)."),
    arms: str = typer.Option("base,rag,ft,hybrid", "--arms", help="Comma-separated arms."),
    llm: str = typer.Option("smollm2", "--llm", help="Model answering (and fine-tuned)."),
    embedder: str = typer.Option("minilm", "--embedder", help="minilm | st:<model> | "
                                 "openai:<model>."),
    synth_questions: int = typer.Option(24, "--synth-questions", help="Questions to "
                                        "synthesise when --questions is not given."),
    epochs: int | None = typer.Option(None, "--epochs", help="Adapter training epochs."),
    held_out_facts: float = typer.Option(0.3, "--held-out-facts", help="Share of the facts "
                                         "the adapter never trains on (split by fact, seeded): "
                                         "its accuracy on new facts."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Measure RAG, fine-tuning and both on your documents; write report.html and the evidence."""
    from ragortune.compare import TRAIN_RECIPE, CompareConfig, run_compare

    recipe = {**TRAIN_RECIPE, **({"epochs": epochs} if epochs else {})}
    cfg = CompareConfig(docs=docs, out=out, questions=questions, docs_v2=docs_v2,
                        questions_v2=questions_v2, paraphrases=paraphrases, scenario=scenario,
                        arms=tuple(a.strip() for a in arms.split(",") if a.strip()), llm=llm,
                        embedder=embedder, synth_questions=synth_questions, train=recipe,
                        held_out_facts=held_out_facts)
    lines = StageLines(enabled=not json_output, live=show_progress(json_output))
    result = run_compare(cfg, on_event=lines.event, on_progress=lines.progress)
    files = {name: str(path) for name, path in result.files.items()}
    if json_output:
        emit_json({"out": str(out), "decision": result.decision, "stages": result.stages,
                   "evidence": str(result.evidence), "files": files, **result.figures})
        return
    _print_arms(result.figures)
    _print_verdict(result.decision, files)


class StageLines:
    """One line per stage on stderr: what runs, how long it took; at a terminal also its
    progress with an ETA."""

    def __init__(self, enabled: bool, live: bool) -> None:
        self.enabled, self.live = enabled, live
        self.started: dict[str, float] = {}

    def event(self, stage: str, what: str, seconds: float, note: str) -> None:
        if not self.enabled:
            return
        if what == "start":
            self.started[stage] = time.perf_counter()
            err_console.print(f"▸ {stage} …", highlight=False, markup=False)
        else:
            extra = f"  ({note})" if note else ""
            label = "reused" if what == "cached" else f"done in {seconds:.1f} s"
            err_console.print(f"  {stage}: {label}{extra}", highlight=False, markup=False)

    def progress(self, stage: str, done: int, total: int) -> None:
        if not self.live or total <= 0:
            return
        elapsed = time.perf_counter() - self.started.get(stage, time.perf_counter())
        eta = elapsed / done * (total - done) if done else 0.0
        err_console.print(f"  {stage}: {done}/{total}, ETA {eta:.0f} s ", highlight=False,
                          markup=False, end="\r" if done < total else "\n")


def _figure(fig: dict[str, Any] | None) -> str:
    if not fig or fig.get("value") is None:
        return "-"
    return f"{fig['value']:.2f} [{fig['low']:.2f}, {fig['high']:.2f}] n={fig['n']}"


def _print_arms(figures: dict[str, Any]) -> None:
    """Accuracy per arm: all counted questions, unseen phrasings, unseen facts."""
    if figures.get("training"):
        console.print(f"fine-tuned arms: {figures['training']}", markup=False, highlight=False)
    for arm, f in (figures.get("arms") or {}).items():
        console.print(f"  {arm}: accuracy {_figure(f.get('accuracy'))}; unseen phrasings "
                      f"{_figure(f.get('accuracy_unseen_phrasing'))}; unseen facts "
                      f"{_figure(f.get('accuracy_unseen_fact'))}", markup=False, highlight=False)


def _print_verdict(decision: dict[str, Any] | None, files: dict[str, str]) -> None:
    if decision is None:
        console.print("no --scenario: measured, not decided (give --scenario for cost and a "
                      "recommendation)", markup=False)
    else:
        mc = decision.get("monte_carlo") or {}
        verdict = ("too close to call" if decision.get("too_close_to_call") else
                   f"wins {decision['confidence']:.0%} of {mc.get('draws', 0):,} cost draws")
        console.print(f"verdict: {decision['recommendation']} ({decision['serving']}), {verdict}",
                      markup=False, highlight=False)
        for reason in decision.get("reasons", [])[:3]:
            console.print(f"  {reason['rank']}. {reason['text']}", markup=False, highlight=False)
    for name, path in files.items():
        console.print(f"{name}: {path}", markup=False, highlight=False)
