"""`ragortune report DIR`: rebuilds both files from a folder, runs nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ragortune.cli import app
from ragortune.errors import InputError


def test_report_rebuilds_both_files_and_says_so_in_json(demo_out: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in demo_out.iterdir()}
    result = CliRunner().invoke(app, ["report", str(demo_out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert Path(payload["files"]["html"]).is_file() and Path(payload["files"]["markdown"]).is_file()
    decision = json.loads((demo_out / "decision.json").read_text())
    assert payload["recommendation"] == decision["recommendation"]
    assert payload["inputs"]["run.json"] is False
    after = {p.name: p.stat().st_mtime_ns for p in demo_out.iterdir() if p.name in before}
    assert after == before  # the inputs are read, never rewritten


def test_report_on_an_empty_folder_is_a_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert isinstance(result.exception, InputError)
