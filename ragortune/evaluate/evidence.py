"""The evidence file: written by every evaluation, read by the cost model and the decision;
and the per-query CSV beside it.

`evidence.json` gathers what later stages (cost, decision, report) read. Each eval command
owns its sections and leaves the others in place, so `eval retrieval`, `eval answers` and
`eval update` into one folder give one file. A file measured on another data set is never
mixed with a new one (an error asks for another folder): every writer passes the data set's
identity, and every figure carries the run and the data set hash it came from.

Schema version 2 (`EvidenceFile`, docs/evaluate.md); version 1 files still load:

  schema_version, ragortune_version, updated_at, versions
  dataset        {name, path, split, files: {corpus, queries, qrels: sha256}, hash, ...}
  retrieval      metric -> Figure ("ndcg@10", "recall@10", ...)
  arms           arm -> {accuracy, accuracy_seen, accuracy_unseen, accuracy_unseen_phrasing,
                 accuracy_unseen_fact, stale_rate, stale_rate_changed, stale_rate_withdrawn,
                 new_fact_accuracy, abstention {precision, recall, answered_recall}, ... :
                 Figure; tokens_per_query {embedding, prompt, completion}, latency_ms {p50, p95},
                 note}
  comparisons    run name -> [{a, b, n, diff, low, high, p_value, p_holm, significant, ...}]
  runs           run name -> {run_id, settings, models, kb, timings_s, files, started_at}
  update, sweep  as written by `eval update` and the sweeps

A Figure is {value, n, low, high, method, split, run_id, dataset, note}: `low`/`high` the 95%
interval (Wilson for proportions, bootstrap for means), `split` one of held-out, in-sample,
cross-validated, all (questions no arm trained or tuned on), unknown (version 1 files).

What the cost model and the decision read (`load_evidence`; everything else is ignored):
  arms.<arm>.accuracy, arms.<arm>.stale_rate   (value, n, interval, split)
  arms.<arm>.tokens_per_query.{prompt,completion,embedding}, arms.<arm>.latency_ms.{p50,p95}
  retrieval."recall@K", retrieval."mrr@K"      the smallest K present is used (10 preferred)
  comparisons                                  the pairwise tests of the latest run (eval answers or compare)
Any part may be missing. A present key with the wrong type or out of its range (an accuracy
of 1.7, recall@10 of 42, a negative stale rate) is an error naming the key.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ragortune import __version__
from ragortune.errors import InputError
from ragortune.evaluate.datasets import Dataset
from ragortune.evaluate.stats import Estimate
from ragortune.io import read_json, utc_now, write_atomic, write_json_atomic

if TYPE_CHECKING:
    from ragortune.kb import KnowledgeBase

SCHEMA_VERSION = 2
EVIDENCE_FILE = "evidence.json"
_PACKAGES = ("numpy", "scipy", "lancedb", "sentence-transformers", "transformers", "torch",
             "peft", "ranx")
ARMS = ("rag", "base", "ft", "hybrid")
SPLITS = ("held-out", "in-sample", "cross-validated", "all", "unknown")
# metric keys whose values are shares: outside [0, 1] they are wrong, not just surprising
_UNIT = re.compile(r"(accuracy.*|stale_rate.*|new_fact_accuracy|answered_rate|contains_gold|"
                   r"exact_match|f1|citation_support_rate|precision|recall|answered_recall|"
                   r"(ndcg|mrr|recall|hit_rate|precision|map)@\d+)")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_hash(files: Mapping[str, str]) -> str:
    """16 hex digits naming a data version: the hash of its files' hashes."""
    return hashlib.sha256(json.dumps(dict(sorted(files.items()))).encode()).hexdigest()[:16]


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    """Name, location and content hashes: the data version a result was measured on."""
    files = {"corpus": dataset.corpus_path, "queries": dataset.path / "queries.jsonl"}
    if dataset.split is not None:
        files["qrels"] = dataset.path / "qrels" / f"{dataset.split}.tsv"
    hashes = {role: file_sha256(path) for role, path in files.items()}
    return {
        "name": dataset.path.resolve().name,
        "path": str(dataset.path.resolve()),
        "split": dataset.split,
        "files": hashes,
        "hash": dataset_hash(hashes),
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
            "hash": dataset_hash(files), "kb": str(kb.path) if kb is not None else None,
            "documents": len(kb.manifest.documents) if kb is not None else None,
            "queries": questions, "judged_queries": 0}


def update_info(questions_v1: Path, questions_v2: Path, v1: Path, v2: Path) -> dict[str, Any]:
    """The data identity of a knowledge-update test: both question files and both versions."""
    files = {"questions_v1": file_sha256(questions_v1), "questions_v2": file_sha256(questions_v2),
             "corpus": _folder_hash(v2), "corpus_v1": _folder_hash(v1),
             "queries": file_sha256(questions_v2)}
    return {"name": f"update-{v2.resolve().name}", "path": str(v2.resolve()), "split": None,
            "files": files, "hash": dataset_hash(files), "queries": None, "judged_queries": 0}


def _folder_hash(folder: Path) -> str:
    parts = sorted((str(p.relative_to(folder)), file_sha256(p)) for p in folder.rglob("*")
                   if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def versions() -> dict[str, str | None]:
    """Installed versions of the pieces that change results (None when not installed)."""
    out: dict[str, str | None] = {"ragortune": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_id(run_name: str, started_at: str) -> str:
    """The id every figure of one command's run carries: `answers@2026-12-02T04:00:00+00:00`."""
    return f"{run_name}@{started_at}"


# -- the schema ---------------------------------------------------------------------------

def _lift(value: Any) -> Any:
    """A version 1 bare number is a figure of unknown n, interval and split."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"value": value, "split": "unknown"}
    return value


class Figure(BaseModel):
    """One measured figure with its uncertainty and provenance."""

    model_config = ConfigDict(extra="allow", frozen=True)
    value: float | None
    n: int | None = Field(default=None, ge=0)
    low: float | None = None
    high: float | None = None
    method: str | None = None
    split: str = "unknown"
    run_id: str | None = None
    dataset: str | None = None
    note: str | None = None


FigureIn = Annotated[Figure, BeforeValidator(_lift)]


class ArmFigures(BaseModel):
    """One arm's figures (other keys, e.g. `model`, `retrained`, pass through)."""

    model_config = ConfigDict(extra="allow")
    accuracy: FigureIn | None = None
    accuracy_seen: FigureIn | None = None
    accuracy_unseen: FigureIn | None = None
    accuracy_unseen_phrasing: FigureIn | None = None
    accuracy_unseen_fact: FigureIn | None = None
    stale_rate: FigureIn | None = None
    stale_rate_changed: FigureIn | None = None
    stale_rate_withdrawn: FigureIn | None = None
    new_fact_accuracy: FigureIn | None = None
    abstention: dict[str, FigureIn | None] | None = None
    tokens_per_query: dict[str, float | None] | None = None
    latency_ms: dict[str, float | None] | None = None
    note: str | None = None


class EvidenceFile(BaseModel):
    """The whole of `evidence.json` (version 1 or 2); read and written only here."""

    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    dataset: dict[str, Any] | None = None
    retrieval: dict[str, FigureIn | None] = Field(default_factory=dict)
    arms: dict[str, ArmFigures] = Field(default_factory=dict)
    comparisons: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    runs: dict[str, Any] = Field(default_factory=dict)


def figure(est: Estimate | None, *, split: str, run: str, dataset: str,
           note: str | None = None) -> dict[str, Any] | None:
    """An `Estimate` as the evidence stores it (None stays None: no figure, not zero)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if est is None:
        return None
    r = (lambda x: None if math.isnan(x) else round(float(x), 6))  # NaN -> None
    out = {"value": r(est.value), "n": est.n, "low": r(est.low), "high": r(est.high),
           "method": est.method, "split": split, "run_id": run, "dataset": dataset}
    if note:
        out["note"] = note
    return out


def _check_ranges(model: EvidenceFile, path: str) -> None:
    """Values outside their range are errors naming the key (a figure above 1, a negative
    latency), whatever wrote the file."""
    def check(where: str, name: str, fig: Figure | None) -> None:
        if fig is None:
            return
        unit = _UNIT.fullmatch(name) is not None
        for part in ("value", "low", "high"):
            x = getattr(fig, part)
            if x is None:
                continue
            if math.isnan(x) or (unit and not 0 <= x <= 1) or (not unit and x < 0):
                bound = "[0, 1]" if unit else ">= 0"
                key = where if part == "value" else f"{where}.{part}"
                raise InputError(f"{path}: key '{key}' = {x!r} is outside {bound}; "
                                 "regenerate the evidence file or remove the key")
        if fig.low is not None and fig.high is not None and fig.value is not None and \
                not fig.low - 1e-9 <= fig.value <= fig.high + 1e-9:
            raise InputError(f"{path}: key '{where}' has value {fig.value} outside its interval "
                             f"[{fig.low}, {fig.high}]; regenerate the evidence file")

    for name, fig in model.retrieval.items():
        check(f"retrieval.{name}", name, fig)
    for arm, figs in model.arms.items():
        for name in ArmFigures.model_fields:
            value = getattr(figs, name)
            if isinstance(value, Figure):
                check(f"arms.{arm}.{name}", name, value)
        for name, fig in (figs.abstention or {}).items():
            check(f"arms.{arm}.abstention.{name}", name, fig)
        for group in ("tokens_per_query", "latency_ms"):
            for name, x in (getattr(figs, group) or {}).items():
                if x is not None and (math.isnan(x) or x < 0):
                    raise InputError(f"{path}: key 'arms.{arm}.{group}.{name}' = {x!r} is "
                                     "negative; regenerate the evidence file")


def validate(data: Any, path: str = "<evidence>") -> EvidenceFile:
    """`evidence.json` content as the model, checked; errors name the file and the key."""
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with 'arms' and/or 'retrieval'")
    try:
        model = EvidenceFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        what = ("must be a number or a figure {value, n, low, high, ...}"
                if "Figure" in msg or "number" in msg else f"is not valid ({msg})")
        raise InputError(f"{path}: key '{key}' {what}, got {err.get('input')!r}; "
                         "regenerate the evidence file or remove the key") from None
    if model.schema_version not in (1, 2):
        raise InputError(f"{path}: schema_version {model.schema_version} is not one this "
                         "ragortune reads (1 or 2); upgrade ragortune")
    _check_ranges(model, path)
    return model


def update_evidence(out_dir: Path, sections: Mapping[str, Any], run_name: str, *,
                    dataset: dict[str, Any]) -> Path:
    """Merge `sections` into `out_dir/evidence.json` (written atomically) and return its path.

    `sections` may hold `retrieval` (replaced), `arms` (merged per arm and key: every figure
    names its run and data set), `comparisons` (stored under `run_name`), `update`
    (replaced), `run` (runs.<run_name>) and `sweep` (sweep.<run_name>; None removes it).
    `dataset` is required: a file whose data set (corpus or queries) differs is refused,
    so results are never mixed. The result is validated before it is written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / EVIDENCE_FILE
    evidence: dict[str, Any] = {}
    if path.is_file():
        try:
            evidence = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); "
                             "delete it or choose another --out folder") from None
    old = evidence.get("dataset") or {}
    if old.get("files"):
        new_files = dataset.get("files", {})
        if any(old["files"].get(k) != new_files.get(k) for k in ("corpus", "queries")):
            raise InputError(
                f"{path} holds results for data set {old.get('path')}, not "
                f"{dataset.get('path')}: choose another --out folder or delete the file")
    if evidence.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION and evidence:
        evidence = {"dataset": old}  # a version 1 file's figures carry no provenance: start anew
    evidence.update(schema_version=SCHEMA_VERSION, ragortune_version=__version__,
                    updated_at=utc_now(), versions=versions(), dataset=dataset)
    for key in ("retrieval", "update"):
        if key in sections:
            evidence[key] = sections[key]
    arms = evidence.setdefault("arms", {}) if "arms" in sections else None
    for arm, values in (sections.get("arms") or {}).items():
        arms[arm] = {**arms.get(arm, {}), **values}
    if "comparisons" in sections:  # re-inserted, so the latest run's tests come last
        comparisons = evidence.setdefault("comparisons", {})
        comparisons.pop(run_name, None)
        comparisons[run_name] = sections["comparisons"]
    if "run" in sections:
        evidence.setdefault("runs", {})[run_name] = sections["run"]
    if "sweep" in sections:
        sweeps = evidence.setdefault("sweep", {})
        sweeps.pop(run_name, None)
        if sections["sweep"] is not None:
            sweeps[run_name] = sections["sweep"]
    validate(json.loads(json.dumps(evidence, default=str)), str(path))
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
    accuracy_figure: Figure | None = None  # n, interval, split (unknown for version 1)
    stale_figure: Figure | None = None
    note: str | None = None


@dataclass(frozen=True)
class Evidence:
    path: str
    arms: dict[str, ArmEvidence] = field(default_factory=dict)
    recall: tuple[str, float] | None = None
    mrr: tuple[str, float] | None = None
    keys_read: tuple[str, ...] = ()
    comparisons: tuple[dict[str, Any], ...] = ()
    schema_version: int = SCHEMA_VERSION

    def arm(self, name: str) -> ArmEvidence:
        return self.arms.get(name, ArmEvidence())

    def comparison(self, a: str, b: str) -> dict[str, Any] | None:
        """The paired test of arms a and b in the latest answers run ({n, diff, p_value,
        p_holm, significant, method, ...}; `diff` is its `a` minus its `b`), None if absent."""
        for c in self.comparisons:
            if {c.get("a"), c.get("b")} == {a, b}:
                return c
        return None

    def significant(self, a: str, b: str) -> bool | None:
        """Whether arms a and b differ significantly (None: not compared)."""
        c = self.comparison(a, b)
        return None if c is None else bool(c.get("significant"))


def _metric(retrieval: Mapping[str, Figure | None], name: str, read: list[str]
            ) -> tuple[str, float] | None:
    found = []
    for key, fig in retrieval.items():
        if fig is not None and fig.value is not None and \
                (m := re.fullmatch(rf"{name}@(\d+)", key)) is not None:
            found.append((0 if m.group(1) == "10" else int(m.group(1)), key))
    if not found:
        return None
    key = min(found)[1]
    read.append(f"retrieval.{key}")
    return key, float(retrieval[key].value)  # type: ignore[union-attr]


def parse_evidence(data: Any, path: str = "<evidence>") -> Evidence:
    model = validate(data, path)
    read: list[str] = []
    arms = {}
    for name in ARMS:
        figs = model.arms.get(name)
        if figs is None:
            continue
        where = f"arms.{name}"
        tokens, latency = figs.tokens_per_query or {}, figs.latency_ms or {}

        def take(fig: Figure | None, key: str) -> float | None:
            if fig is None or fig.value is None:
                return None
            read.append(f"{where}.{key}")
            return fig.value

        def num(group: Mapping[str, float | None], key: str, prefix: str) -> float | None:
            if group.get(key) is None:
                return None
            read.append(f"{where}.{prefix}.{key}")
            return float(group[key])  # type: ignore[arg-type]

        arms[name] = ArmEvidence(
            accuracy=take(figs.accuracy, "accuracy"),
            prompt_tokens=num(tokens, "prompt", "tokens_per_query"),
            completion_tokens=num(tokens, "completion", "tokens_per_query"),
            embedding_tokens=num(tokens, "embedding", "tokens_per_query"),
            latency_p50_ms=num(latency, "p50", "latency_ms"),
            latency_p95_ms=num(latency, "p95", "latency_ms"),
            stale_rate=take(figs.stale_rate, "stale_rate"),
            accuracy_figure=figs.accuracy, stale_figure=figs.stale_rate, note=figs.note,
        )
    # the paired tests of the latest run that wrote any (`eval answers` or `compare`)
    comparisons = tuple(list(model.comparisons.values())[-1]) if model.comparisons else ()
    return Evidence(path=path, arms=arms, recall=_metric(model.retrieval, "recall", read),
                    mrr=_metric(model.retrieval, "mrr", read), keys_read=tuple(read),
                    comparisons=comparisons, schema_version=model.schema_version)


def load_evidence(path: Path | str) -> Evidence:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: evidence file not found; run the evaluation first or drop "
                         "--evidence")
    return parse_evidence(read_json(path, "run the evaluation again"), str(path))
