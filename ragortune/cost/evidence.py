"""What the cost model and the decision read from the evaluation's `evidence.json`.

The file is written by the evaluation stage; any part may be missing. Only these keys are
read (everything else is ignored):
  arms.<arm>.accuracy                          arm in rag, base, ft, hybrid
  arms.<arm>.tokens_per_query.{prompt,completion,embedding}
  arms.<arm>.latency_ms.{p50,p95}
  arms.<arm>.stale_rate
  retrieval."recall@K", retrieval."mrr@K"      the smallest K present is used (10 preferred)
A present key with the wrong type is an error naming the key; a missing one is just absent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragortune.errors import InputError

ARMS = ("rag", "base", "ft", "hybrid")


@dataclass(frozen=True)
class ArmEvidence:
    accuracy: float | None = None
    prompt_tokens: float | None = None
    completion_tokens: float | None = None
    embedding_tokens: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    stale_rate: float | None = None


@dataclass(frozen=True)
class Evidence:
    path: str
    arms: dict[str, ArmEvidence] = field(default_factory=dict)
    recall: tuple[str, float] | None = None
    mrr: tuple[str, float] | None = None
    keys_read: tuple[str, ...] = ()

    def arm(self, name: str) -> ArmEvidence:
        return self.arms.get(name, ArmEvidence())


def _number(data: dict[str, Any], key: str, where: str, path: str, read: list[str]
            ) -> float | None:
    if not isinstance(data, dict) or data.get(key) is None:
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{path}: key '{where}.{key}' must be a number, got {value!r}; "
                         "regenerate the evidence file or remove the key")
    read.append(f"{where}.{key}")
    return float(value)


def _metric(retrieval: dict[str, Any], name: str, path: str, read: list[str]
            ) -> tuple[str, float] | None:
    found = []
    for key in retrieval:
        if (m := re.fullmatch(rf"{name}@(\d+)", key)) is not None:
            found.append((0 if m.group(1) == "10" else int(m.group(1)), key))
    if not found:
        return None
    key = min(found)[1]
    value = _number(retrieval, key, "retrieval", path, read)
    return (key, value) if value is not None else None


def parse_evidence(data: Any, path: str = "<evidence>") -> Evidence:
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with 'arms' and/or 'retrieval'")
    read: list[str] = []
    arms = {}
    raw_arms = data.get("arms") or {}
    if not isinstance(raw_arms, dict):
        raise InputError(f"{path}: key 'arms' must be an object keyed by arm name")
    for name in ARMS:
        raw = raw_arms.get(name)
        if not isinstance(raw, dict):
            continue
        where = f"arms.{name}"
        tokens = raw.get("tokens_per_query") or {}
        latency = raw.get("latency_ms") or {}
        arms[name] = ArmEvidence(
            accuracy=_number(raw, "accuracy", where, path, read),
            prompt_tokens=_number(tokens, "prompt", f"{where}.tokens_per_query", path, read),
            completion_tokens=_number(tokens, "completion", f"{where}.tokens_per_query", path,
                                      read),
            embedding_tokens=_number(tokens, "embedding", f"{where}.tokens_per_query", path, read),
            latency_p50_ms=_number(latency, "p50", f"{where}.latency_ms", path, read),
            latency_p95_ms=_number(latency, "p95", f"{where}.latency_ms", path, read),
            stale_rate=_number(raw, "stale_rate", where, path, read),
        )
    retrieval = data.get("retrieval") or {}
    if not isinstance(retrieval, dict):
        raise InputError(f"{path}: key 'retrieval' must be an object like {{\"recall@10\": 0.8}}")
    recall = _metric(retrieval, "recall", path, read)
    mrr = _metric(retrieval, "mrr", path, read)
    return Evidence(path=path, arms=arms, recall=recall, mrr=mrr, keys_read=tuple(read))


def load_evidence(path: Path | str) -> Evidence:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: evidence file not found; run the evaluation first or drop "
                         "--evidence")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_evidence(data, str(path))
