"""The evidence file every evaluation writes, and the per-query CSV beside it.

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
"""

from __future__ import annotations

import csv
import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ragortune import __version__
from ragortune.errors import InputError
from ragortune.evaluate.datasets import Dataset

SCHEMA_VERSION = 1
EVIDENCE_FILE = "evidence.json"
_PACKAGES = ("numpy", "lancedb", "sentence-transformers", "transformers", "torch", "peft",
             "ranx")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
                    updated_at=now(), versions=versions())
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
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(evidence, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rows of plain values as CSV; lists become space-separated cells."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: " ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                             for k, v in row.items()})
    return path
