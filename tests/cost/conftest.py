"""Fixtures for the cost tests: scenario files written into tmp_path, the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from .helpers import MINIMAL


@pytest.fixture
def write_scenario(tmp_path: Path):
    """Write a scenario TOML into tmp_path and return its path."""

    def write(text: str = MINIMAL, name: str = "scenario.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Invoke the real Typer app in tmp_path (so no ragortune.toml from the repo leaks in)."""
    from ragortune.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    return invoke
