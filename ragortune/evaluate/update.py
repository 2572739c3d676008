"""The knowledge-update test: answer on v1, apply v2 through the incremental sync, answer again.

The documents are staged in one working folder, so v2 replaces v1 at the same paths and the
sync sees edits, additions and deletions as a user's KB would. Per arm it reports accuracy
on the new facts, the stale-answer rate (answers that still give the v1 value) and what the
update cost: the re-index for retrieval arms, the retraining for fine-tuned ones (taken from
the adapter's own training record, `ragortune_train.json`), nothing for the base model,
which cannot learn the change at all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragortune.evaluate.answer_metrics import matches_gold, normalize_answer
from ragortune.evaluate.answers import AnswerProgress, Arm, ArmAnswer, run_arms, summarise
from ragortune.evaluate.datasets import Query
from ragortune.index import SyncReport, sync
from ragortune.kb import KnowledgeBase

TRAIN_RECORD = "ragortune_train.json"


def stage(source: Path, docs: Path) -> None:
    """Make `docs` hold exactly the version in `source` (a BEIR folder gives its corpus only)."""
    if docs.exists():
        shutil.rmtree(docs)
    if (source / "corpus.jsonl").is_file():
        docs.mkdir(parents=True)
        shutil.copy2(source / "corpus.jsonl", docs / "corpus.jsonl")
    else:
        shutil.copytree(source, docs, ignore=shutil.ignore_patterns(".*"))


def changed_facts(v1: Sequence[Query], v2: Sequence[Query]) -> dict[str, tuple[str, ...]]:
    """v2 questions whose gold answers are new: absent from v1, or with other answers there.

    Returns, per such question id, the v1 answers (empty when the question is new)."""
    old = {q.query_id: q for q in v1}
    out = {}
    for q in v2:
        if not q.answers:
            continue
        before = old.get(q.query_id)
        before_answers = before.answers if before is not None and before.answers else ()
        if {normalize_answer(a) for a in before_answers} != {
                normalize_answer(a) for a in q.answers}:
            out[q.query_id] = before_answers
    return out


def is_stale(answer: ArmAnswer, v1_answers: Sequence[str], v2_answers: Sequence[str]) -> bool:
    """Still gives the v1 value and not the v2 one."""
    return (bool(v1_answers) and matches_gold(answer.answer, v1_answers)
            and not matches_gold(answer.answer, v2_answers))


def retraining_cost(adapter: str | None) -> dict[str, Any]:
    """The retraining a fine-tuned arm needs, estimated by its adapter's last training run.

    A LoRA adapter does not take a fact edit in place: the update costs a run like the last."""
    record = Path(adapter) / TRAIN_RECORD if adapter else None
    if record is None or not record.is_file():
        return {"kind": "retrain", "estimated": True, "seconds": None, "tokens": None,
                "note": f"no {TRAIN_RECORD} beside the adapter to estimate from"}
    data = json.loads(record.read_text(encoding="utf-8"))
    return {"kind": "retrain", "estimated": True, "seconds": data.get("train_seconds"),
            "tokens": data.get("tokens"), "examples": data.get("examples"),
            "device": data.get("device"),
            "note": "one training run like the adapter's last one (its ragortune_train.json)"}


@dataclass(frozen=True)
class UpdateResult:
    before: list[ArmAnswer]
    after: list[ArmAnswer]
    index_v1: SyncReport
    index_v2: SyncReport
    changed: dict[str, tuple[str, ...]]

    def per_arm(self, arms: Sequence[Arm], questions_v2: Sequence[Query]) -> dict[str, Any]:
        """Per arm: accuracy before/after, on the new facts, stale rate and update cost."""
        gold = {q.query_id: q.answers or () for q in questions_v2}
        before, after = summarise(self.before), summarise(self.after)
        out: dict[str, Any] = {}
        for arm in arms:
            rows = [a for a in self.after if a.arm == arm.name and a.query_id in self.changed]
            stale = [is_stale(a, self.changed[a.query_id], gold[a.query_id]) for a in rows]
            with_old = [s for a, s in zip(rows, stale, strict=True) if self.changed[a.query_id]]
            if arm.retrieval:
                cost = {"kind": "reindex", "estimated": False,
                        "seconds": round(self.index_v2.seconds, 3),
                        "embedding_tokens": self.index_v2.embedding_tokens,
                        "chunks_embedded": self.index_v2.chunks_embedded,
                        "chunks_reused": self.index_v2.chunks_reused,
                        "documents": self.index_v2.to_json()["documents"]}
            else:
                cost = {"kind": "none", "estimated": False, "seconds": 0, "tokens": 0,
                        "note": "the base model cannot take in the change"}
            if arm.adapter is not None:
                retrain = retraining_cost(arm.adapter)
                cost = ({"kind": "reindex+retrain", "estimated": True, "reindex": cost,
                         "retrain": retrain} if arm.retrieval else retrain)
            out[arm.name] = {
                "accuracy_v1": before[arm.name]["accuracy"],
                "accuracy_v2": after[arm.name]["accuracy"],
                "new_fact_accuracy": (sum(bool(a.correct) for a in rows) / len(rows)
                                      if rows else None),
                "stale_rate": sum(with_old) / len(with_old) if with_old else None,
                "new_facts": len(rows),
                "update_cost": cost,
            }
        return out


def run_update(kb: KnowledgeBase, docs: Path, v1: Path, v2: Path, questions_v1: Sequence[Query],
               questions_v2: Sequence[Query], arms: Sequence[Arm], *, k: int, mode: str,
               min_score: float | None, max_tokens: int,
               on_progress: AnswerProgress | None = None) -> UpdateResult:
    """Stage v1 in `docs`, sync, answer; stage v2 in its place, sync again, answer again."""
    stage(v1, docs)
    index_v1 = sync(kb, [docs])
    options = {"k": k, "mode": mode, "min_score": min_score, "max_tokens": max_tokens,
               "on_progress": on_progress}
    before = run_arms(arms, questions_v1, kb, **options)
    stage(v2, docs)
    index_v2 = sync(kb, [docs])
    after = run_arms(arms, questions_v2, kb, **options)
    return UpdateResult(before, after, index_v1, index_v2,
                        changed_facts(questions_v1, questions_v2))
