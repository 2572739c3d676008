"""The knowledge-update test: answer on v1, apply v2 through the incremental sync, answer again.

The documents are staged in one working folder, so v2 replaces v1 at the same paths and the
sync sees edits, additions and deletions as a user's KB would. Per arm it reports accuracy
on the new facts, the stale-answer rate (answers that still give the v1 value: of a changed
fact, or of a withdrawn one, whose v2 answer is to decline) with n and a 95% interval, and
what the update cost: the re-index for retrieval arms; for fine-tuned ones the retraining, measured
when the caller retrains (`retrain`: the v2 answers then come from the new adapter), else
estimated from the adapter's own training record (`ragortune_train.json`) while the arm
answers v2 with its v1 adapter; nothing for the base model, which cannot learn the change.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ragortune.errors import InputError
from ragortune.evaluate.arms import AnswerProgress, Arm, ArmAnswer, run_arms, summarise
from ragortune.evaluate.heldout import adapter_training
from ragortune.evaluate.stats import Estimate, proportion
from ragortune.generate.llm import LLM
from ragortune.judge import is_abstention, matches_gold, normalize_answer
from ragortune.kb import KnowledgeBase
from ragortune.kb.sync import SyncReport, sync
from ragortune.questions import Question
from ragortune.tune.trained import SEEN, TrainedOn

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


def changed_facts(v1: Sequence[Question], v2: Sequence[Question]) -> dict[str, tuple[str, ...]]:
    """v2 questions whose gold answers are new: absent from v1, other answers there, or
    withdrawn (answered in v1, unanswerable in v2: the right v2 answer is to decline).

    Returns, per such question id, the v1 answers (empty when the question is new)."""
    old = {q.id: q for q in v1}
    out = {}
    for q in v2:
        if q.answers is None:
            continue
        before = old.get(q.id)
        before_answers = before.answers if before is not None and before.answers else ()
        if not q.answers and not before_answers:
            continue  # unanswerable in both: nothing changed
        if {normalize_answer(a) for a in before_answers} != {
                normalize_answer(a) for a in q.answers}:
            out[q.id] = before_answers
    return out


def withdrawn_facts(v1: Sequence[Question], v2: Sequence[Question]) -> set[str]:
    """Questions answered in v1 whose fact v2 withdrew (`answers: []` in v2)."""
    old = {q.id: q for q in v1}
    return {q.id for q in v2 if q.answers == () and old.get(q.id) is not None
            and old[q.id].answers}


def is_stale(answer: ArmAnswer, v1_answers: Sequence[str], v2_answers: Sequence[str]) -> bool:
    """Still gives the v1 value and not the v2 one (for a withdrawn fact, v2 has none: any
    answer stating the v1 value is stale, declining is right)."""
    return (bool(v1_answers) and not answer.abstained
            and matches_gold(answer.answer, v1_answers)
            and not (v2_answers and matches_gold(answer.answer, v2_answers)))


@dataclass(frozen=True)
class Retraining:
    """A fine-tuned arm brought up to v2: the new adapter and its measured cost."""

    adapter: str
    cost: dict[str, Any]  # kind "retrain", estimated False: seconds, cpu_seconds, tokens, ...


Retrainer = Callable[[str], Retraining]  # v1 adapter folder -> the adapter trained on v2


def retraining_cost(adapter: str | None) -> dict[str, Any]:
    """The retraining a fine-tuned arm needs, estimated by its adapter's last training run.

    A LoRA adapter does not take a fact edit in place: the update costs a run like the last."""
    record = Path(adapter) / TRAIN_RECORD if adapter else None
    if record is None or not record.is_file():
        return {"kind": "retrain", "estimated": True, "seconds": None, "tokens": None,
                "note": f"no {TRAIN_RECORD} beside the adapter to estimate from"}
    data = json.loads(record.read_text(encoding="utf-8"))
    return {"kind": "retrain", "estimated": True, "seconds": data.get("train_seconds"),
            "cpu_seconds": data.get("cpu_seconds"), "tokens": data.get("tokens"),
            "examples": data.get("examples"), "device": data.get("device"),
            "note": "the training steps of one run like the adapter's last one (its "
                    "ragortune_train.json); measure the whole retraining with --retrain"}


def retrainer(questions_v2: Path, out: Path,
              on_progress: Callable[[Any], None] | None = None) -> Retrainer:
    """A `Retrainer` that repeats the adapter's `tune build` + `tune train` on the v2
    questions (new adapter in `out/adapter`) and reports what the whole of it cost."""
    def run(adapter: str) -> Retraining:
        from ragortune.tune.retrain import retrain

        done = retrain(adapter, questions_v2, out, on_progress=on_progress)
        t = done.train
        return Retraining(done.adapter, {
            "kind": "retrain", "estimated": False, "seconds": done.seconds,
            "cpu_seconds": done.cpu_seconds, "tokens": t.tokens, "target_tokens": t.target_tokens,
            "build_seconds": done.build_seconds, "train_seconds": t.train_seconds,
            "train_cpu_seconds": t.cpu_seconds, "tokens_per_s": t.tokens_per_s,
            "steps": t.steps, "epochs": t.epochs, "examples": t.examples,
            "loss_first": t.loss_first, "loss_last": t.loss_last, "device": t.device,
            "peak_memory_bytes": t.peak_memory_bytes, "from_adapter": adapter,
            "adapter": done.adapter, "data": str(done.build.train_path),
            "note": "tune build + tune train on the v2 questions with the v1 adapter's "
                    "settings; seconds: the whole of it, wall clock"})

    return run


def with_adapter(arms: Sequence[Arm], adapter: str, load: Callable[[str | None], LLM]
                 ) -> list[Arm]:
    """The same arms, the fine-tuned ones now on `adapter` (one model, loaded once)."""
    model: LLM | None = None
    out = []
    for arm in arms:
        if arm.adapter is None:
            out.append(arm)
            continue
        if model is None:
            model = load(adapter)
        out.append(replace(arm, llm=model, adapter=adapter))
    return out


NOT_RETRAINED = "@v1"  # suffix of a fine-tuned arm answering v2 still on its v1 adapter


@dataclass(frozen=True)
class UpdateResult:
    """`after` holds the v2 answers of every arm (fine-tuned ones on the retrained adapter
    when there was a retraining); `not_retrained` the answers the fine-tuned arms gave to the
    new facts on their v1 adapter before it (arm names end in `@v1`), empty without one."""

    before: list[ArmAnswer]
    after: list[ArmAnswer]
    index_v1: SyncReport
    index_v2: SyncReport
    changed: dict[str, tuple[str, ...]]
    index_v2_cpu_seconds: float | None = None
    retraining: Retraining | None = None
    not_retrained: list[ArmAnswer] = field(default_factory=list)
    withdrawn: frozenset[str] = frozenset()  # changed facts that v2 withdrew

    def summaries(self) -> dict[str, dict[str, Any]]:
        """The `eval answers` summary per arm, for v1 and for v2 (`@v1` arms: their new
        facts only, so they are in `per_arm`, not here)."""
        return {"v1": summarise(self.before), "v2": summarise(self.after)}

    def reindex_cost(self) -> dict[str, Any]:
        r = self.index_v2
        return {"kind": "reindex", "estimated": False, "seconds": round(r.seconds, 3),
                "cpu_seconds": self.index_v2_cpu_seconds, "tokens": r.embedding_tokens,
                "embedding_tokens": r.embedding_tokens, "chunks_embedded": r.chunks_embedded,
                "chunks_reused": r.chunks_reused, "documents": r.to_json()["documents"]}

    def per_arm(self, arms: Sequence[Arm], questions_v2: Sequence[Question]) -> dict[str, Any]:
        """Per arm: accuracy before/after, on the new facts, stale rate and update cost; with
        a retraining, also each fine-tuned arm as it answered v2 before it (`ft@v1`)."""
        gold = {q.id: q.answers or () for q in questions_v2}
        before, after = summarise(self.before), summarise(self.after + self.not_retrained)
        out: dict[str, Any] = {}
        for arm in arms:
            if arm.retrieval:
                cost = self.reindex_cost()
            else:
                cost = {"kind": "none", "estimated": False, "seconds": 0, "tokens": 0,
                        "note": "the base model cannot take in the change"}
            adapter_v2 = arm.adapter
            if arm.adapter is not None:
                if self.retraining is not None:
                    retrain, adapter_v2 = self.retraining.cost, self.retraining.adapter
                else:
                    retrain = retraining_cost(arm.adapter)
                cost = ({"kind": "reindex+retrain", "estimated": retrain["estimated"],
                         "seconds": _sum(cost["seconds"], retrain["seconds"]),
                         "reindex": cost, "retrain": retrain} if arm.retrieval else retrain)
            trained_v1 = adapter_training(arm.adapter)
            trained_v2 = adapter_training(adapter_v2) if adapter_v2 != arm.adapter else trained_v1
            knew = trained_v1 if arm.adapter is not None and not arm.retrieval else None
            out[arm.name] = {**self._facts(arm.name, gold, before, after, trained=trained_v2,
                                           knew=knew),
                             "adapter_v1": arm.adapter, "adapter_v2": adapter_v2,
                             "update_cost": cost}
            if arm.adapter is not None and self.not_retrained:
                name = arm.name + NOT_RETRAINED
                kept = {"kind": "none", "estimated": False, "seconds": 0, "tokens": 0,
                        "note": "the v1 adapter, not retrained"}
                out[name] = {**self._facts(name, gold, before, after, v1_name=arm.name,
                                           trained=trained_v1, knew=knew),
                             "adapter_v1": arm.adapter, "adapter_v2": arm.adapter,
                             "update_cost": self.reindex_cost() if arm.retrieval else kept}
        return out

    def _facts(self, name: str, gold: Mapping[str, Sequence[str]], before: Mapping[str, Any],
               after: Mapping[str, Any], v1_name: str | None = None,
               trained: TrainedOn | None = None, knew: TrainedOn | None = None
               ) -> dict[str, Any]:
        """Accuracy and staleness on the changed facts, each {value, n, low, high}; `trained`
        (the adapter's record) keeps questions it was trained on, with their v2 answer, out of
        `new_fact_accuracy`. `knew`, for an arm that holds facts only in its v1 adapter, keeps
        the stale rate to the facts that adapter learned: a fact it never saw cannot go stale,
        and counting it would dilute the rate."""
        rows = [a for a in self.after + self.not_retrained
                if a.arm == name and a.query_id in self.changed]
        seen = [a.query_id for a in rows if _trained_on(trained, a, gold[a.query_id])]
        counted = [a for a in rows if a.query_id not in seen]
        stale = {a.query_id: is_stale(a, self.changed[a.query_id], gold[a.query_id])
                 for a in rows if self.changed[a.query_id]
                 and (knew is None or a.query_id in knew.fact_ids)}
        withdrawn = [q for q in stale if q in self.withdrawn]
        changed = [q for q in stale if q not in self.withdrawn]
        return {"accuracy_v1": before[v1_name or name]["accuracy"],
                # a `@v1` arm is asked the new facts only: no accuracy over all of v2
                "accuracy_v2": after[name]["accuracy"] if v1_name is None else None,
                "new_fact_accuracy": _est(proportion([bool(a.correct) for a in counted])),
                "stale_rate": _est(proportion(list(stale.values()))),
                "stale_rate_changed": _est(proportion([stale[q] for q in changed])),
                "stale_rate_withdrawn": _est(proportion([stale[q] for q in withdrawn])),
                "new_facts": len(rows), "seen_new_facts": len(seen)}


def _trained_on(trained: TrainedOn | None, answer: ArmAnswer, gold: Sequence[str]) -> bool:
    """Whether the adapter was trained on this very phrasing with its v2 answer (the v1 answer
    to a changed fact is not the new fact: asking it measures staleness, not memory)."""
    if trained is None or trained.exposure(answer.query_id, answer.question) != SEEN:
        return False
    taught = (trained.answers or {}).get(answer.query_id, "")
    return matches_gold(taught, gold) if gold else is_abstention(taught)


def _est(e: Estimate) -> dict[str, Any] | None:
    """An estimate as plain JSON; no questions -> None (no figure)."""
    if e.n == 0:
        return None
    return {"value": round(e.value, 6), "n": e.n, "low": round(e.low, 6),
            "high": round(e.high, 6), "method": e.method}


FACT_FIGURES = ("stale_rate", "stale_rate_changed", "stale_rate_withdrawn", "new_fact_accuracy")


def evidence_arms(per_arm: Mapping[str, Any], *, run: str, dataset: str) -> dict[str, Any]:
    """Stale rates and new-fact accuracy per arm for evidence.json (`UpdateResult.per_arm`
    in), as figures carrying `run` and the `dataset` hash; every one is held out by
    construction (the v2 facts were not in the v1 data, and a retrained arm's training
    questions are left out).

    A retrained arm's `stale_rate` is the one before its retraining (`ft@v1`): what users get
    between a knowledge update and the next training run, which is what the decision weighs;
    the retrained figures and the measured cost go under `retrained`."""
    def figures(v: Mapping[str, Any]) -> dict[str, Any]:
        return {key: ({**v[key], "split": "held-out", "run_id": run, "dataset": dataset}
                      if v.get(key) else None) for key in FACT_FIGURES}

    out = {}
    for arm, v in per_arm.items():
        if arm.endswith(NOT_RETRAINED):
            continue
        entry = figures(v)
        old = per_arm.get(arm + NOT_RETRAINED)
        if old is not None:
            cost = v["update_cost"].get("retrain", v["update_cost"])
            entry = {**figures(old),
                     "retrained": {**entry, **{k: cost.get(k) for k in
                                               ("seconds", "cpu_seconds", "tokens")}}}
        out[arm] = entry
    return out


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a + b, 3)


def run_update(kb: KnowledgeBase, docs: Path, v1: Path, v2: Path, questions_v1: Sequence[Question],
               questions_v2: Sequence[Question], arms: Sequence[Arm], *, k: int, mode: str,
               min_score: float | None, max_tokens: int,
               retrain: Retrainer | None = None,
               load: Callable[[str | None], LLM] | None = None,
               on_progress: AnswerProgress | None = None) -> UpdateResult:
    """Stage v1 in `docs`, sync, answer; stage v2 in its place, sync again, (with `retrain`
    and `load`: retrain the fine-tuned arms' adapter and load the new one), answer again."""
    adapters = {arm.adapter for arm in arms if arm.adapter is not None}
    if retrain is not None and (len(adapters) != 1 or load is None):
        raise InputError("retraining needs one fine-tuned arm's adapter (ft or hybrid in the "
                         "arms) and a model loader")
    stage(v1, docs)
    index_v1 = sync(kb, [docs])
    options = {"k": k, "mode": mode, "min_score": min_score, "max_tokens": max_tokens,
               "on_progress": on_progress}
    before = run_arms(arms, questions_v1, kb, **options)
    stage(v2, docs)
    cpu_started = time.process_time()
    index_v2 = sync(kb, [docs])
    index_cpu = round(time.process_time() - cpu_started, 3)
    retraining, not_retrained = None, []
    if retrain is not None and load is not None:
        # what the fine-tuned arms answer to the new facts until the retraining is done
        still_v1 = [replace(a, name=a.name + NOT_RETRAINED) for a in arms if a.adapter]
        changed = changed_facts(questions_v1, questions_v2)
        new_facts = [q for q in questions_v2 if q.id in changed]
        if new_facts:
            not_retrained = run_arms(still_v1, new_facts, kb, **options)
        retraining = retrain(adapters.pop())
        arms = with_adapter(arms, retraining.adapter, load)
    after = run_arms(arms, questions_v2, kb, **options)
    return UpdateResult(before, after, index_v1, index_v2,
                        changed_facts(questions_v1, questions_v2), index_cpu, retraining,
                        not_retrained, frozenset(withdrawn_facts(questions_v1, questions_v2)))
