"""Shared helpers for the cost tests (imported relatively; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "scenarios"

MINIMAL = """
name = "minimal"
[corpus]
documents = 5000
tokens_per_document = 500
[traffic]
queries_per_month = 10000
"""


def cli_json(invoke, *args: str) -> dict[str, Any]:
    return json.loads(invoke(*args, "--json").stdout)


def run_main(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed entry point as a user runs it: real exit codes, real stderr."""
    code = "from ragortune.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)
