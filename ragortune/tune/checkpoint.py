"""Training checkpoints that survive a kill at any instant.

A checkpoint is written into a temporary folder and renamed into place only once complete, so
`checkpoints/step-N` either holds a whole checkpoint or does not exist.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

PREFIX = "step-"
STATE = "state.pt"


def save(folder: Path, step: int, state: dict[str, Any], *, keep: int = 2) -> Path:
    """Write `state` as checkpoint `step`, atomically; keep only the newest `keep` checkpoints."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".tmp-"))
    try:
        torch.save(state, tmp / STATE)
        with open(tmp / STATE, "rb") as fh:  # on disk before the rename makes it visible
            os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(folder.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(folder: Path) -> Path | None:
    """The newest complete checkpoint, or None; half-written temporary folders are ignored."""
    found = sorted(p for p in folder.glob(f"{PREFIX}*") if (p / STATE).is_file())
    return found[-1] if found else None


def discard_partial(folder: Path) -> None:
    """Delete temporary folders left by a run killed while writing a checkpoint."""
    for tmp in folder.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path / STATE, map_location="cpu", weights_only=True)


def clear(folder: Path) -> None:
    """Remove all checkpoints (after a finished run) and any leftovers of killed writes."""
    shutil.rmtree(folder, ignore_errors=True)
