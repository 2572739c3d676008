"""The Typer app and the output helpers every command shares.

Commands live in sibling modules (`kb.py`, `cost.py`, ...) that register on `app`;
they parse arguments, call library functions, and print. No work happens here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
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


class _Count(ProgressColumn):
    """`done/total`, or a task's own `detail` field ("201/300 chunks, 40,112/55,178 tokens");
    a task whose total is not known yet shows its count alone, never "0/None"."""

    def render(self, task: Task) -> Text:
        detail = task.fields.get("detail")
        if detail:
            return Text(str(detail))
        done = int(task.completed)
        return Text(f"{done:,}" if task.total is None else f"{done:,}/{int(task.total):,}")


@contextmanager
def progress_bar(json_output: bool) -> Iterator[Progress | None]:
    """A transient bar on stderr's terminal (None in --json mode or a pipe); the ETA comes
    from the recent rate, so a task must advance while its work happens."""
    if not show_progress(json_output):
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), _Count(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield progress


def sync_progress(progress: Progress, task: TaskID, label: str) -> Callable[[Any], None]:
    """A `sync` progress callback (kb.sync.SyncProgress) driving `task`: each stage (reading,
    chunking, embedding; with --ray, "on Ray" in files) restarts the bar, so the ETA is that
    of the stage under way."""
    stage = {"name": ""}

    def update(p: Any) -> None:
        unit = {"reading": "files", "chunking": "documents"}.get(p.stage)
        if unit:
            detail = f"{p.done:,}/{p.total:,} {unit}"
        elif p.stage == "embedding":
            detail = (f"{p.chunks_embedded:,}/{p.chunks_to_embed:,} chunks, "
                      f"{p.done:,}/{p.total:,} tokens")
        else:  # Ray loads, chunks and embeds at once: files done, chunks so far (no total)
            detail = f"{p.done:,}/{p.total:,} files, {p.chunks_embedded:,} chunks embedded"
        if p.stage != stage["name"]:
            stage["name"] = p.stage
            progress.reset(task, total=p.total, description=f"{label} {p.stage}",
                           detail=detail)
        progress.update(task, completed=p.done, total=p.total, detail=detail)

    return update


NARROW = 100  # columns below which tables drop their vertical rules and outer padding


def table(columns: Sequence[str], rows: Iterable[Sequence[str | Text]], *,
          numeric: Collection[str] = (), optional: Sequence[str] = (), title: str | None = None,
          caption: str | None = None, show_header: bool = True,
          styles: dict[int, str] | None = None,
          box_style: box.Box | None = box.HEAVY_HEAD) -> Table:
    """A table that stays readable at 80 columns: no cell or header ever ends in "…". Text
    wraps at spaces and folds only a word longer than its column; figures (`numeric`) are
    right-aligned and never wrapped; each column is at least as wide as its longest word (a
    text column up to a cap), so "Hybrid-self" or "$245,192" is not cut. On a narrow terminal
    the frame gets lighter and, if the table still does not fit, the `optional` columns go,
    last first, with a note saying so. `styles` maps a row index to its style."""
    body = [[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row] for row in rows]
    narrow = console.width < NARROW
    keep = list(columns)
    dropped: list[str] = []
    while True:
        out = _build_table(columns, keep, body, numeric, narrow, title=title, caption=caption,
                           show_header=show_header, styles=styles or {}, box_style=box_style)
        todo = [c for c in reversed(optional) if c in keep]
        wide_open = console.options.update(max_width=10_000)  # unclamped: the real minimum
        if not todo or Measurement.get(console, wide_open, out).minimum <= console.width:
            break
        keep.remove(todo[0])
        dropped.insert(0, todo[0])
    if dropped:
        note = f"not shown at this width: {', '.join(dropped)} (see --json)"
        out.caption = f"{caption}\n{note}" if caption else note
    return out


def _build_table(columns: Sequence[str], keep: list[str], body: list[list[Text]],
                 numeric: Collection[str], narrow: bool, *, title: str | None,
                 caption: str | None, show_header: bool, styles: dict[int, str],
                 box_style: box.Box | None) -> Table:
    frame = box.SIMPLE_HEAD if narrow and box_style is not None else box_style
    out = Table(title=title, caption=caption, show_header=show_header, box=frame,
                pad_edge=not narrow, collapse_padding=True)
    index = [columns.index(name) for name in keep]
    for i in index:
        name = columns[i]
        cells = [row[i].plain for row in body if i < len(row)]
        if name in numeric:  # no_wrap holds for the header too: it must fit whole
            width = max([len(c) for c in cells] + [len(name)])
            out.add_column(name, justify="right", no_wrap=True, overflow="fold", min_width=width)
        else:
            width = max([_longest_word(c) for c in cells] + [_longest_word(name)])
            out.add_column(name, overflow="fold", min_width=min(width, 16 if narrow else 24))
    for n, row in enumerate(body):
        out.add_row(*(row[i] for i in index), style=styles.get(n))
    return out


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


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
