"""The Typer app and the output helpers every command shares.

Commands live in sibling modules (`kb.py`, `cost.py`, ...) that register on `app`;
they parse arguments, call library functions, and print. No work happens here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

app = typer.Typer(
    name="ragortune",
    help="Measure whether your knowledge belongs in retrieval (RAG), fine-tuning, or both.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts show [brackets] literally ("the scenario's [prices]")
)

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON (schema in README).")


def labelled(label: str, style: str, message: object) -> Text:
    """`label` in `style`, then `message` exactly as written: user and error text never goes
    through Rich markup, where `[prices]` or `[prices.models."X"]` would vanish as tags."""
    text = Text(f"{label} ", style=style) if label else Text()
    text.append(str(message))
    return text


def print_error(message: object) -> None:
    """One line on stderr: a red `error:` and the message, never wrapped or reinterpreted."""
    err_console.print(labelled("error:", "red", message), highlight=False, soft_wrap=True)


def print_warning(message: object, label: str = "warning:", *, stderr: bool = False) -> None:
    """A yellow label and a literal message, on stdout (part of a command's report) by default."""
    (err_console if stderr else console).print(labelled(label, "yellow", message),
                                               highlight=False, soft_wrap=True)


def emit_json(payload: Any) -> None:
    """Print one JSON document on stdout; the stable machine interface of every command."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def show_progress(json_mode: bool) -> bool:
    """Progress bars only for a person at a terminal, never in --json mode or pipes."""
    return not json_mode and sys.stderr.isatty()


@contextmanager
def progress_bar(json_output: bool) -> Iterator[Progress | None]:
    if not show_progress(json_output):
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield progress


eval_app = typer.Typer(
    help="Measure retrieval and answers on a labelled data set (BEIR layout); "
         "every run writes evidence.json for `cost`, `decide` and the report.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")

DATASET_OPTION = typer.Option(..., "--dataset", help="BEIR folder: corpus.jsonl, queries.jsonl, "
                              "qrels/<split>.tsv.")
WORK_OPTION = typer.Option(Path("ragortune-eval"), "--work", help="Folder for the evaluation "
                           "KBs (reused between runs) and, by default, the results.")
OUT_OPTION = typer.Option(None, "--out", help="Folder for evidence.json and the CSVs "
                          "[default: WORK/<data set name>].")
