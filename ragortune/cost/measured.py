"""The single adapter through which the cost stage and the decision read `evidence.json`.

The evidence reader is moving (cost/evidence.py -> evaluate/evidence.py, same schema); every
caller in cost/, decide.py and cli/cost.py imports from here, so that move is a one-line edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragortune.evaluate.evidence import ArmEvidence, Evidence, load_evidence, parse_evidence

__all__ = ["ArmEvidence", "Evidence", "evidence_from_dict", "read_evidence"]


def read_evidence(path: Path | str) -> Evidence:
    """Load `evidence.json` (errors name the file and the key)."""
    return load_evidence(path)


def evidence_from_dict(data: Any, origin: str = "<evidence>") -> Evidence:
    """Parse an already-loaded evidence document."""
    return parse_evidence(data, origin)
