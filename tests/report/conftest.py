"""Report fixtures: folders made by the real commands (tests/report/data/make_fixtures.sh),
copied to a temporary folder per test because building a report writes into it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def _copy(name: str, tmp_path: Path, required: bool = True) -> Path:
    src = DATA / name
    if not (src / "evidence.json").is_file():
        message = f"fixture {src} missing: run tests/report/data/make_fixtures.sh {name}"
        if required:
            pytest.fail(message)
        pytest.skip(message + " (it needs ../shared/datasets/scifact)")
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def demo_out(tmp_path: Path) -> Path:
    """The demo KB: two arms (base, rag) answered on 7 v1 questions, then cost and decide.
    (The checked-in copy lacks the script's `eval update` step: it did not finish on the
    loaded machine it was made on; rerun `make_fixtures.sh demo` to add stale rates.)"""
    return _copy("demo", tmp_path)


@pytest.fixture
def scifact_out(tmp_path: Path) -> Path:
    """A SciFact subset: retrieval metrics, no answers."""
    return _copy("scifact", tmp_path, required=False)
