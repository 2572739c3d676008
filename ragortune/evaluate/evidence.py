"""The evidence file: written by every evaluation, read by the cost model and the decision;
and the per-query CSV beside it.

`evidence.json` gathers what later stages (cost, decision, report) read. Each eval command
owns its sections and leaves the others in place, so `eval retrieval`, `eval answers` and
`eval update` into one folder give one file. A file measured on another data set is never
mixed with a new one (an error asks for another folder). Schema (version 1; keys are only
ever added):

  schema_version, ragortune_version, updated_at
  dataset        {name, path, split, files: {corpus,queries,qrels: sha256}, documents, queries,
                  judged_queries}
  versions       {python, numpy, lancedb, sentence-transformers, transformers, torch, ...}
  retrieval      metric means only: {"ndcg@10", "mrr@10", "recall@1", ..., "hit_rate@100"}
  arms           per arm (base, rag, ft, hybrid): accuracy, tokens_per_query
                 {embedding, prompt, completion}, latency_ms {p50, p95}, stale_rate, ...
  runs           per command (retrieval, answers, update): settings, models, kb, timings_s,
                 usage, files, started_at
  sweep          per command: one row per configuration

What the cost model and the decision read (`load_evidence`; everything else is ignored):
  arms.<arm>.accuracy                          arm in rag, base, ft, hybrid
  arms.<arm>.tokens_per_query.{prompt,completion,embedding}
  arms.<arm>.latency_ms.{p50,p95}
  arms.<arm>.stale_rate
  retrieval."recall@K", retrieval."mrr@K"      the smallest K present is used (10 preferred)
Any part may be missing. A present key with the wrong type is an error naming the key; a
missing one is just absent.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragortune import __version__
from ragortune.errors import InputError
from ragortune.evaluate.datasets import Dataset
from ragortune.io import utc_now, write_atomic, write_json_atomic

if TYPE_CHECKING:
    from ragortune.kb import KnowledgeBase

SCHEMA_VERSION = 1
EVIDENCE_FILE = "evidence.json"
_PACKAGES = ("numpy", "lancedb", "sentence-transformers", "transformers", "torch", "peft",
             "ranx")
ARMS = ("rag", "base", "ft", "hybrid")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    """Name, location and content hashes: the data version a result was measured on."""
    files = {"corpus": dataset.corpus_path, "queries": dataset.path / "queries.jsonl"}
    if dataset.split is not None:
        files["qrels"] = dataset.path / "qrels" / f"{dataset.split}.tsv"
    return {
        "name": dataset.path.resolve().name,
        "path": str(dataset.path.resolve()),
        "split": dataset.split,
        "files": {role: file_sha256(path) for role, path in files.items()},
        "documents": dataset.corpus_size,
        "queries": len(dataset.queries),
        "judged_queries": len(dataset.qrels),
    }


def questions_info(path: Path, questions: int, kb: KnowledgeBase | None) -> dict[str, Any]:
    """What `dataset_info` says of a BEIR folder, for a questions file asked of an existing KB:
    the KB's documents (source and content hash) stand for the corpus, so answers measured
    on another KB are never mixed into the same evidence file."""
    files = {"queries": file_sha256(path)}
    if kb is not None:
        docs = sorted((d["source"], d["hash"]) for d in kb.manifest.documents.values())
        files["corpus"] = hashlib.sha256(json.dumps(docs).encode()).hexdigest()
    return {"name": path.stem, "path": str(path.resolve()), "split": None, "files": files,
            "kb": str(kb.path) if kb is not None else None,
            "documents": len(kb.manifest.documents) if kb is not None else None,
            "queries": questions, "judged_queries": 0}


def versions() -> dict[str, str | None]:
    """Installed versions of the pieces that change results (None when not installed)."""
    out: dict[str, str | None] = {"ragortune": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def update_evidence(out_dir: Path, sections: Mapping[str, Any], run_name: str,
                    dataset: dict[str, Any] | None = None) -> Path:
    """Merge `sections` into `out_dir/evidence.json` (written atomically) and return its path.

    `sections` may hold `retrieval` (replaced), `arms` (merged per arm and key, so the update
    test's stale_rate joins the answers' accuracy), `update` (replaced), `run` (stored as
    runs.<run_name>) and `sweep` (sweep.<run_name>; None removes it). A `dataset` whose
    corpus or queries differ from the file's is refused: results are never mixed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / EVIDENCE_FILE
    evidence: dict[str, Any] = {}
    if path.is_file():
        try:
            evidence = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); "
                             "delete it or choose another --out folder") from None
    old_files = (evidence.get("dataset") or {}).get("files") or {}
    if dataset is not None and old_files:
        new_files = dataset.get("files", {})
        if any(old_files.get(k) != new_files.get(k) for k in ("corpus", "queries")):
            raise InputError(
                f"{path} holds results for data set {evidence['dataset'].get('path')}, not "
                f"{dataset.get('path')}: choose another --out folder or delete the file")
    evidence.update(schema_version=SCHEMA_VERSION, ragortune_version=__version__,
                    updated_at=utc_now(), versions=versions())
    if dataset is not None:
        evidence["dataset"] = dataset
    for key in ("retrieval", "update"):
        if key in sections:
            evidence[key] = sections[key]
    arms = evidence.setdefault("arms", {}) if "arms" in sections else None
    for arm, values in (sections.get("arms") or {}).items():
        arms[arm] = {**arms.get(arm, {}), **values}
    if "run" in sections:
        evidence.setdefault("runs", {})[run_name] = sections["run"]
    if "sweep" in sections:
        sweeps = evidence.setdefault("sweep", {})
        sweeps.pop(run_name, None)
        if sections["sweep"] is not None:
            sweeps[run_name] = sections["sweep"]
    return write_json_atomic(path, evidence, indent=2)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rows of plain values as CSV, written atomically; lists become space-separated cells."""
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: " ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                         for k, v in row.items()})
    return write_atomic(path, buffer.getvalue())


# -- reading: what the cost model and the decision take from the file ----------------------

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
