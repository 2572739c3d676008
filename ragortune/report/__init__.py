"""The report: a `compare --out` folder rebuilt into report.html and report.md, running nothing.

    from ragortune.report import build_report
    paths = build_report(Path("out"))   # {"html": out/report.html, "markdown": out/report.md}
"""

from __future__ import annotations

import os
from pathlib import Path

from ragortune.io import write_atomic
from ragortune.report.html import render_html
from ragortune.report.markdown import render_markdown
from ragortune.report.model import ReportModel, load_report

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"


def build_report(folder: Path | str) -> tuple[ReportModel, dict[str, Path]]:
    """Read the folder, write both reports into it (atomically), return the model and paths."""
    folder = Path(folder)
    model = load_report(folder)
    paths = {"html": write_atomic(folder / HTML_FILE, render_html(model)),
             "markdown": write_atomic(folder / MARKDOWN_FILE, render_markdown(model))}
    umask = os.umask(0)
    os.umask(umask)
    for path in paths.values():  # a file to hand round: readable as any new file would be
        path.chmod(0o666 & ~umask)
    return model, paths


def write_report(folder: Path | str) -> dict[str, Path]:
    """What `ragortune compare` calls: build both reports, return {"html", "markdown"} paths."""
    return build_report(folder)[1]


__all__ = ["HTML_FILE", "MARKDOWN_FILE", "ReportModel", "build_report", "load_report",
           "write_report"]
