"""Arm figures that count only what an arm never trained on, with intervals and paired tests.

A fine-tuned arm asked its own training questions measures memorisation, not knowledge. Each
question is sorted against the adapter's training record (`tune.trained`): `seen` questions
are reported apart (`accuracy_seen`) and kept out of the arm's `accuracy`, which is the
accuracy on unseen questions (held-out phrasings of trained facts and held-out facts). An
arm with no unseen question gets no accuracy, and a note says why. Arms without an adapter
(base, rag) trained on nothing: all their questions count.

The calibrated RAG gate is scored the same way: its threshold is chosen on k-1 folds of the
labelled questions and its abstention measured on the fold it never saw (`cross_validate`).

Pairs of arms are compared on the questions that count for both (exact McNemar, Holm-adjusted
over the pairs of one run), so "rag beats ft" is stated only when the measured n supports it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ragortune.errors import InputError
from ragortune.evaluate.stats import Estimate, PairedTest, holm, kfold, mcnemar, proportion, wilson
from ragortune.io import read_json
from ragortune.rag.calibrate import choose_threshold
from ragortune.tune.trained import RECORD_KEY, SEEN, UNSEEN_FACT, UNSEEN_PHRASING, TrainedOn

NO_RECORD = ("the adapter carries no record of what it was trained on (data not made by "
             "`ragortune tune build`), so its training questions cannot be told from new ones: "
             "build the data with `ragortune tune build` and train again")
NO_UNSEEN = ("every question was a training question of the adapter: no held-out question to "
             "measure it on; hold out facts (`tune build --validation`) or train on paraphrases")


def adapter_training(adapter: str | Path | None) -> TrainedOn | None:
    """The record of what `adapter` was trained on, from its `ragortune_train.json`; None when
    the adapter's data was not built by this version of `tune build` (no record to compare)."""
    if adapter is None:
        return None
    from ragortune.tune.train import RUN_FILE  # lazily: it imports torch

    path = Path(adapter) / RUN_FILE
    if not path.is_file():
        return None
    run = read_json(path, "train the adapter again")
    build = (run.get("dataset_build") or {}) if isinstance(run, dict) else {}
    if RECORD_KEY not in build:
        return None
    return TrainedOn.from_dict(build[RECORD_KEY], f"{path} (dataset_build)")


class Answered(Protocol):
    """What scoring needs of one answer (`evaluate.arms.ArmAnswer` has it)."""

    arm: str
    query_id: str
    question: str
    answerable: bool | None
    correct: bool | None
    abstained: bool


@dataclass(frozen=True)
class ArmScore:
    """One arm's figures. `accuracy` counts only `counted` questions (all of them for arms
    without an adapter, the unseen ones for fine-tuned arms); None with a `note` when none."""

    arm: str
    accuracy: Estimate | None
    accuracy_seen: Estimate | None = None
    accuracy_unseen: Estimate | None = None
    accuracy_unseen_phrasing: Estimate | None = None
    accuracy_unseen_fact: Estimate | None = None
    abstention_recall: Estimate | None = None  # unanswerable questions declined
    answered_rate: Estimate | None = None  # answerable questions not declined
    exposure: Mapping[str, str] = field(default_factory=dict)  # question id -> seen/unseen_*
    counted: frozenset[str] = frozenset()
    note: str | None = None

    @property
    def split(self) -> str:
        return "held-out" if self.exposure else "all"


def _accuracy(rows: Sequence[Answered]) -> Estimate | None:
    answerable = [r for r in rows if r.answerable]
    return proportion([bool(r.correct) for r in answerable]) if answerable else None


def score_arm(rows: Sequence[Answered], trained: TrainedOn | None = None, *,
              fine_tuned: bool = False) -> ArmScore:
    """Figures of one arm's answers; `trained` is its adapter's record (`adapter_training`)."""
    rows = [r for r in rows if r.answerable is not None]
    arm = rows[0].arm if rows else ""
    if not fine_tuned:
        return ArmScore(arm, _accuracy(rows), abstention_recall=_abstention(rows),
                        answered_rate=_answered(rows),
                        counted=frozenset(r.query_id for r in rows))
    if trained is None:
        return ArmScore(arm, None, note=NO_RECORD)
    exposure = {r.query_id: trained.exposure(r.query_id, r.question) for r in rows}
    by_kind = {kind: [r for r in rows if exposure[r.query_id] == kind]
               for kind in (SEEN, UNSEEN_PHRASING, UNSEEN_FACT)}
    unseen = by_kind[UNSEEN_PHRASING] + by_kind[UNSEEN_FACT]
    accuracy = _accuracy(unseen)
    return ArmScore(
        arm, accuracy, accuracy_seen=_accuracy(by_kind[SEEN]), accuracy_unseen=accuracy,
        accuracy_unseen_phrasing=_accuracy(by_kind[UNSEEN_PHRASING]),
        accuracy_unseen_fact=_accuracy(by_kind[UNSEEN_FACT]),
        abstention_recall=_abstention(unseen), answered_rate=_answered(unseen),
        exposure=exposure, counted=frozenset(r.query_id for r in unseen),
        note=None if accuracy is not None else NO_UNSEEN,
    )


def _abstention(rows: Sequence[Answered]) -> Estimate | None:
    unanswerable = [r for r in rows if r.answerable is False]
    return proportion([r.abstained for r in unanswerable]) if unanswerable else None


def _answered(rows: Sequence[Answered]) -> Estimate | None:
    answerable = [r for r in rows if r.answerable]
    return proportion([not r.abstained for r in answerable]) if answerable else None


def score_arms(answers: Sequence[Answered], trained: Mapping[str, TrainedOn | None],
               fine_tuned: set[str] | frozenset[str]) -> dict[str, ArmScore]:
    """`score_arm` for every arm in `answers`; `trained` maps a fine-tuned arm to its record."""
    arms = list(dict.fromkeys(a.arm for a in answers))
    return {arm: score_arm([a for a in answers if a.arm == arm], trained.get(arm),
                           fine_tuned=arm in fine_tuned) for arm in arms}


@dataclass(frozen=True)
class Comparison:
    """A paired test of two arms, with the Holm-adjusted p-value over the run's pairs."""

    test: PairedTest
    p_holm: float

    @property
    def significant(self) -> bool:
        return self.p_holm < self.test.alpha

    def to_json(self) -> dict[str, Any]:
        t = self.test
        better = t.a if t.diff > 0 else t.b if t.diff < 0 else None
        return {"a": t.a, "b": t.b, "n": t.n, "diff": round(t.diff, 4), "low": round(t.low, 4),
                "high": round(t.high, 4), "a_only": t.a_only, "b_only": t.b_only,
                "p_value": round(t.p_value, 6), "p_holm": round(self.p_holm, 6),
                "method": t.method, "alpha": t.alpha, "significant": self.significant,
                "verdict": (f"{better} is more accurate (significant at n={t.n})"
                            if self.significant and better else
                            f"no significant difference at n={t.n}")}


def compare_arms(answers: Sequence[Answered], scores: Mapping[str, ArmScore], *,
                 seed: int = 0) -> list[Comparison]:
    """Exact McNemar for each pair of arms on the answerable questions that count for both
    (so a fine-tuned arm's training questions never enter), Holm-adjusted over the pairs."""
    right = {(a.arm, a.query_id): bool(a.correct) for a in answers if a.answerable}
    tests: list[PairedTest] = []
    for a, b in itertools.combinations(scores, 2):
        if scores[a].accuracy is None or scores[b].accuracy is None:
            continue
        shared = sorted(q for q in scores[a].counted & scores[b].counted
                        if (a, q) in right and (b, q) in right)
        if not shared:
            continue
        tests.append(mcnemar([right[a, q] for q in shared], [right[b, q] for q in shared],
                             a=a, b=b, seed=seed))
    adjusted = holm([t.p_value for t in tests]) if tests else []
    return [Comparison(t, p) for t, p in zip(tests, adjusted, strict=True)]


@dataclass(frozen=True)
class CrossValidated:
    """Abstention measured out of sample: each fold's questions are gated by a threshold
    chosen on the other folds, so no question judges the threshold it was used to choose."""

    k: int
    thresholds: tuple[float, ...]  # one per fold
    abstained: tuple[tuple[str, bool, bool], ...]  # (_id, abstained, answerable)
    precision: Estimate  # abstentions that were right (unanswerable)
    recall: Estimate  # unanswerable questions that abstained
    answered_recall: Estimate  # answerable questions let through

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CrossValidated:
        """Back from `to_json` (a cached result); the per-question decisions are not kept."""
        def est(e: Mapping[str, Any]) -> Estimate:
            return Estimate(e["value"], e["n"], e["low"], e["high"], e["method"])
        return cls(int(data["k"]), tuple(data["thresholds"]), (), est(data["precision"]),
                   est(data["recall"]), est(data["answered_recall"]))

    def to_json(self) -> dict[str, Any]:
        def est(e: Estimate) -> dict[str, Any]:
            return {"value": e.value, "n": e.n, "low": e.low, "high": e.high,
                    "method": e.method, "split": "cross-validated"}
        return {"k": self.k, "thresholds": [round(t, 4) for t in self.thresholds],
                "precision": est(self.precision), "recall": est(self.recall),
                "answered_recall": est(self.answered_recall)}


def cross_validate(scores: np.ndarray, answerable: np.ndarray, ids: list[str], *, k: int = 5,
                   seed: int = 0) -> CrossValidated:
    """k-fold cross-validated abstention of the calibrated gate (k = len(ids): leave-one-out).
    A training part with only one class keeps the threshold of the whole set's best guess:
    the midpoint rule cannot be fitted there, so that fold's figure is conservative."""
    folds = kfold(ids, k, seed=seed)
    position = {qid: i for i, qid in enumerate(ids)}
    abstain = np.zeros(len(ids), dtype=bool)
    thresholds = []
    for fold in folds:
        held = np.array([position[q] for q in fold], dtype=int)
        rest = np.setdiff1d(np.arange(len(ids)), held)
        if answerable[rest].all() or not answerable[rest].any():
            raise InputError(f"cross-validation needs answerable and unanswerable questions in "
                             f"every training part; use fewer folds than {k}")
        t = choose_threshold(scores[rest], answerable[rest])
        thresholds.append(t)
        abstain[held] = scores[held] < t
    unans = ~answerable
    return CrossValidated(
        k=len(folds), thresholds=tuple(thresholds),
        abstained=tuple((q, bool(a), bool(b)) for q, a, b in zip(ids, abstain, answerable)),
        precision=wilson(int((abstain & unans).sum()), int(abstain.sum())),
        recall=wilson(int((abstain & unans).sum()), int(unans.sum())),
        answered_recall=wilson(int((~abstain & answerable).sum()), int(answerable.sum())),
    )


def evidence_arm(score: ArmScore, summary: Mapping[str, Any], *, run: str, dataset: str,
                 gate: CrossValidated | None = None) -> dict[str, Any]:
    """One arm's entry of evidence.json (schema 2): every figure with n, its 95% interval,
    split, run and data set. `summary` (`arms.summarise`) gives tokens, latency and counts;
    `gate` replaces a retrieval arm's abstention with the cross-validated figures."""
    from ragortune.evaluate.evidence import figure

    split = "held-out" if score.exposure else "all"

    def fig(est: Estimate | None, where: str = split) -> dict[str, Any] | None:
        return figure(est, split=where, run=run, dataset=dataset)

    abstention = {"recall": fig(score.abstention_recall),
                  "answered_recall": fig(score.answered_rate)}
    if gate is not None:
        abstention = {"precision": fig(gate.precision, "cross-validated"),
                      "recall": fig(gate.recall, "cross-validated"),
                      "answered_recall": fig(gate.answered_recall, "cross-validated"),
                      "k": gate.k}
    out = {
        "accuracy": fig(score.accuracy),
        "accuracy_seen": fig(score.accuracy_seen, "in-sample"),
        "accuracy_unseen": fig(score.accuracy_unseen),
        "accuracy_unseen_phrasing": fig(score.accuracy_unseen_phrasing),
        "accuracy_unseen_fact": fig(score.accuracy_unseen_fact),
        "abstention": abstention,
        "tokens_per_query": dict(summary.get("tokens_per_query") or {}),
        "latency_ms": {k: v for k, v in (summary.get("latency_ms") or {}).items()
                       if k in ("p50", "p95")},
        "questions": summary.get("questions"),
        "counted_questions": len(score.counted),
        "seen_questions": sum(1 for k in score.exposure.values() if k == SEEN),
        "note": score.note,
    }
    if "model" in summary:
        out["model"] = summary["model"]
    return out


def arms_evidence(answers: Sequence[Answered], arms: Sequence[Any],
                  summary: Mapping[str, Mapping[str, Any]], *, run: str, dataset: str,
                  gate: CrossValidated | None = None
                  ) -> tuple[dict[str, ArmScore], dict[str, Any], list[dict[str, Any]]]:
    """One run's arms scored (a fine-tuned arm against its adapter's training record), their
    evidence entries (`gate` for the retrieval arms) and the paired comparisons."""
    records = {a.name: adapter_training(a.adapter) for a in arms if a.adapter}
    scores = score_arms(answers, records, set(records))
    figures = {a.name: evidence_arm(scores[a.name], summary[a.name], run=run, dataset=dataset,
                                    gate=gate if a.retrieval else None) for a in arms}
    return scores, figures, [c.to_json() for c in compare_arms(answers, scores)]


def gate_for(kb: Any, questions: Sequence[Any], *, k: int, mode: str, seed: int = 0
             ) -> CrossValidated | None:
    """The similarity gate's abstention on these labelled questions, cross-validated
    (leave-one-out up to 200 questions, else 10 folds): what a threshold calibrated on such
    questions does on ones it was not calibrated on. None when the set cannot tell (fewer than
    two answerable or two unanswerable questions)."""
    from ragortune.rag.calibrate import best_similarities

    labelled = [q for q in questions if q.answers is not None]
    answerable = np.array([bool(q.answers) for q in labelled], dtype=bool)
    if answerable.sum() < 2 or (~answerable).sum() < 2:
        return None
    scores = best_similarities(kb, list(labelled), k=k, mode=mode)
    folds = len(labelled) if len(labelled) <= 200 else 10
    try:
        return cross_validate(scores, answerable, [q.id for q in labelled], k=folds, seed=seed)
    except InputError:
        return None


def retrieval_figures(per_query: Mapping[str, Sequence[float]], query_ids: Sequence[str], *,
                      keep: set[str] | frozenset[str] | None = None, split: str, run: str,
                      dataset: str, seed: int = 0) -> dict[str, Any]:
    """Each retrieval metric's mean over `keep` (every query when None) with a seeded
    bootstrap 95% interval, as evidence figures."""
    from ragortune.evaluate.evidence import figure
    from ragortune.evaluate.stats import bootstrap_mean

    index = [i for i, q in enumerate(query_ids) if keep is None or q in keep]
    return {name: figure(bootstrap_mean(np.asarray(values, dtype=float)[index], seed=seed),
                         split=split, run=run, dataset=dataset)
            for name, values in per_query.items()}


def choose_out_of_sample(per_query: Sequence[Mapping[str, Sequence[float]]],
                         query_ids: Sequence[str], metric: str, *, seed: int = 0
                         ) -> tuple[int, frozenset[str], frozenset[str]]:
    """A sweep's configuration chosen on one seeded half of the queries (best mean `metric`,
    first among ties), to be reported on the other half: (index, tuned on, report on)."""
    from ragortune.evaluate.stats import split_half

    tune, report = split_half(list(query_ids), seed=seed)
    tune_set = set(tune)
    index = [i for i, q in enumerate(query_ids) if q in tune_set]
    means = [float(np.mean(np.asarray(p[metric], dtype=float)[index])) for p in per_query]
    return means.index(max(means)), frozenset(tune), frozenset(report)
