"""The Typer app and the output helpers every command shares.

Commands live in sibling modules (`kb.py`, `cost.py`, ...) that register on `app`;
they parse arguments, call library functions, and print. No work happens here.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(
    name="ragortune",
    help="Measure whether your knowledge belongs in retrieval (RAG), fine-tuning, or both.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON (schema in README).")


def emit_json(payload: Any) -> None:
    """Print one JSON document on stdout; the stable machine interface of every command."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def show_progress(json_mode: bool) -> bool:
    """Progress bars only for a person at a terminal, never in --json mode or pipes."""
    return not json_mode and sys.stderr.isatty()
