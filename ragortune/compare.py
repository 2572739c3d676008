"""`ragortune compare`: the whole measurement on a team's own documents, in one call.

Stages, each cached in OUT/stages/<stage>-<hash of its inputs>/ (written to a temporary
folder and renamed when finished, so Ctrl-C leaves every finished stage reusable and no half
one): index v1 -> questions (given, or synthesised) -> gate (its abstention measured on
folds of the questions it was not calibrated on) -> adapter (trained on paraphrases of 70% of
the facts, so the original wording stays unseen and 30% of the facts are new to it) -> answers v1 -> index v2 -> answers v2 ->
evidence -> cost and decision. The KB syncs are incremental, so editing one document
re-embeds only its chunks and redoes only the stages downstream of the KB.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragortune.errors import InputError
from ragortune.io import utc_now, write_json_atomic, write_jsonl_atomic
from ragortune.kb import KnowledgeBase, open_kb
from ragortune.kb.sync import SyncReport, sync
from ragortune.questions import Question, read_questions
from ragortune.report import write_report

STAGES = "stages"
STAGE_FILE = "stage.json"
RUN_FILE = "run.json"

# stage name, event ("start" | "cached" | "done"), seconds (done/cached), note
StageEvent = Callable[[str, str, float, str], None]
# stage name, items done, items total
ItemProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CompareConfig:
    """What `ragortune compare` was asked; every stage's cache key is built from it."""

    docs: Path
    out: Path
    questions: Path | None = None
    docs_v2: Path | None = None
    questions_v2: Path | None = None
    paraphrases: Path | None = None
    scenario: Path | None = None
    arms: tuple[str, ...] = ("base", "rag", "ft", "hybrid")
    llm: str = "smollm2"
    embedder: str = "minilm"
    chunk_size: int = 240
    chunk_overlap: int = 30
    k: int = 3
    mode: str = "hybrid"
    max_tokens: int = 32
    synth_questions: int = 24
    seed: int = 0
    held_out_facts: float = 0.3  # share of the facts the adapter never trains on (by fact)
    train: dict[str, Any] = field(default_factory=lambda: dict(TRAIN_RECIPE))


# Short answers, few examples: the top 15 of SmolLM2's 30 layers, every linear layer, a high
# learning rate; measured on the demo: loss 2.5 -> 0.01 in 8 epochs of 24 questions.
TRAIN_RECIPE = {"epochs": 3, "batch_size": 4, "lr": 3e-3, "lora_r": 16, "top_layers": 15,
                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                   "up_proj", "down_proj"]}


def fingerprint(value: Any) -> str:
    """A short stable hash of JSON-able inputs."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tree_hash(path: Path) -> str:
    """Content hash of a file or of every file under a folder (names and bytes)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:16]


class StageCache:
    """Runs a stage once per distinct input; its files live in the folder it is handed."""

    def __init__(self, root: Path, on_event: StageEvent | None = None) -> None:
        self.root = root / STAGES
        self.on_event = on_event or (lambda *_: None)
        self.ran: dict[str, dict[str, Any]] = {}

    def folder(self, name: str, inputs: dict[str, Any]) -> Path:
        return self.root / f"{name}-{fingerprint(inputs)}"

    def run(self, name: str, inputs: dict[str, Any],
            compute: Callable[[Path], dict[str, Any]]) -> tuple[dict[str, Any], Path]:
        folder = self.folder(name, inputs)
        done = folder / STAGE_FILE
        if done.is_file():
            record = json.loads(done.read_text(encoding="utf-8"))
            self.ran[name] = {"cached": True, "seconds": record["seconds"], "key": folder.name}
            self.on_event(name, "cached", record["seconds"], "")
            return record["result"], folder
        partial = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self.on_event(name, "start", 0.0, "")
        started = time.perf_counter()
        result = compute(partial)
        seconds = round(time.perf_counter() - started, 3)
        write_json_atomic(partial / STAGE_FILE, {"inputs": inputs, "result": result,
                                                 "seconds": seconds, "finished_at": utc_now()})
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        self.ran[name] = {"cached": False, "seconds": seconds, "key": folder.name}
        self.on_event(name, "done", seconds, "")
        return result, folder


# -- stages ------------------------------------------------------------------------------

def stage_documents(source: Path, docs: Path) -> None:
    """Make `docs` hold exactly `source`, so v2 replaces v1 at the same paths and the sync
    sees edits, additions and deletions as it would in a user's own folder."""
    if docs.exists():
        shutil.rmtree(docs)
    if is_beir(source):  # a BEIR data set: its corpus only (queries and qrels are not documents)
        source = source / "corpus.jsonl"
    if source.is_file():
        docs.mkdir(parents=True)
        shutil.copy2(source, docs / source.name)
    else:
        shutil.copytree(source, docs, ignore=shutil.ignore_patterns(".*"))


def is_beir(folder: Path) -> bool:
    return folder.is_dir() and (folder / "corpus.jsonl").is_file() and (folder / "qrels").is_dir()


def retrieval(kb: KnowledgeBase, folder: Path, mode: str) -> dict[str, Any]:
    """nDCG@10, MRR@10, recall@k and hit rate per judged query of a BEIR data set (the corpus
    is what the KB indexed), kept per query so the evidence can give intervals."""
    from ragortune.evaluate.datasets import load_dataset
    from ragortune.evaluate.retrieval import run_queries

    result = run_queries(kb, load_dataset(folder), mode=mode, ks=(1, 5, 10, 100))
    return {"ids": list(result.metrics.query_ids), "mode": mode,
            "per_query": {k: v.tolist() for k, v in result.metrics.per_query.items()},
            "means": result.means()}


def index(cfg: CompareConfig, source: Path, kb_path: Path, docs: Path) -> tuple[KnowledgeBase,
                                                                                 dict[str, Any]]:
    """Sync `source` into the KB at `kb_path` (incremental: unchanged documents cost nothing)."""
    kb = open_kb(kb_path, create=True, embedder=cfg.embedder, chunk_size=cfg.chunk_size,
                 chunk_overlap=cfg.chunk_overlap)
    stage_documents(source, docs)
    cpu = time.process_time()
    report = sync(kb, [docs])
    return kb, {**report.to_json(), "cpu_seconds": round(time.process_time() - cpu, 3)}


def kb_state(kb: KnowledgeBase) -> str:
    """What a downstream stage depends on: the KB's content, not its folder."""
    return fingerprint({k: v["hash"] for k, v in kb.manifest.documents.items()}
                       | {"settings": kb.settings.model_dump(exclude={"created_at",
                                                                      "min_score"})})


def synthesise(kb: KnowledgeBase, llm: Any, n: int, seed: int, out: Path) -> Path:
    """Questions from the KB itself (LLM-written, answer copied from the chunk) when the user
    gave none; the report says so."""
    from ragortune.evaluate.synth import generate_pairs

    result = generate_pairs(kb, llm, n, seed=seed)
    if not result.pairs:
        raise InputError(f"the model wrote no usable question from {result.attempts} chunks: "
                         "give --questions FILE (JSONL with text and answers)")
    path = out / "questions.jsonl"
    write_jsonl_atomic(path, ({"_id": p.question.id, "text": p.question.text,
                               "answers": list(p.question.answers or ())} for p in result.pairs))
    return path


def gate(kb: KnowledgeBase, questions: list[Question], *, k: int, mode: str,
         seed: int) -> dict[str, Any]:
    """The threshold the run answers with (calibrated on all questions, so labelled
    in-sample) and the abstention it gives on questions it was not calibrated on (k-fold)."""
    from ragortune.evaluate.heldout import gate_for
    from ragortune.rag.calibrate import calibrate

    labelled = [q for q in questions if q.answers is not None]
    if not any(q.answerable for q in labelled) or all(q.answerable for q in labelled):
        return {"threshold": None, "cross_validated": None,
                "note": "no gate: it needs answerable and unanswerable questions"}
    cross = gate_for(kb, labelled, k=k, mode=mode, seed=seed)
    return {"threshold": calibrate(kb, labelled, k=k, mode=mode).threshold,
            "threshold_split": "in-sample",
            "cross_validated": cross.to_json() if cross else None}


def train_adapter(cfg: CompareConfig, questions: Path, out: Path,
                  on_progress: ItemProgress | None) -> dict[str, Any]:
    """`tune build` + `tune train` on a seeded share of the facts (split by fact, so every
    wording of a held-out fact stays out): with paraphrases, on the paraphrases of the trained
    facts only, so the questions then asked are unseen phrasings of trained facts or unseen
    facts; without, on the trained facts in their original wording (the rest unseen)."""
    from ragortune.evaluate.arms import CLOSED_BOOK_SYSTEM
    from ragortune.tune.dataset import build_dataset
    from ragortune.tune.train import TrainConfig, train

    paraphrased = cfg.paraphrases is not None
    built = build_dataset(questions, out / "data", system=CLOSED_BOOK_SYSTEM,
                          refusal="I don't know.", validation=cfg.held_out_facts, split_by="fact",
                          seed=cfg.seed, paraphrase_file=cfg.paraphrases,
                          original_wording=not paraphrased)
    recipe = {**cfg.train, "target_modules": tuple(cfg.train["target_modules"])}
    config = TrainConfig(data=str(built.train_path), out=str(out / "adapter"),
                         seed=cfg.seed, **recipe)
    result = train(config, on_progress=(lambda p: on_progress("adapter", p.step, p.total_steps))
                   if on_progress else None)
    trained_facts = _trained_facts(out / "data")
    facts = len(read_questions(questions, require_answers=True))
    return {"adapter": "adapter", "examples": built.n_train, "facts": facts,
            "trained_facts": trained_facts, "held_out_facts": facts - trained_facts,
            "held_out_share": cfg.held_out_facts, "split_seed": cfg.seed,
            "protocol": protocol(paraphrased, facts, trained_facts),
            "seconds": result.train_seconds, "cpu_seconds": result.cpu_seconds,
            "tokens": result.tokens, "loss_first": result.loss_first,
            "loss_last": result.loss_last}


def protocol(paraphrased: bool, facts: int, trained: int) -> str:
    """The training protocol in one honest sentence (the report and `--json` show it)."""
    held = facts - trained
    if paraphrased:
        return (f"trained on the paraphrases of {trained} of {facts} facts (split by "
                f"fact, seeded), never on the questions' own wording; asked the original "
                f"questions: unseen phrasings of the {trained} trained facts and {held} facts "
                "never trained on")
    return (f"trained on {trained} of {facts} facts in their original wording (split by fact, "
            f"seeded); the other {held} facts held out: their questions are unseen facts, the "
            "trained ones are in-sample (seen) and kept out of the accuracy")


def _trained_facts(data: Path) -> int:
    """Facts the adapter trained on, from the record `tune build` writes beside train.jsonl
    (a question without paraphrases is never trained on either: it counts as held out)."""
    from ragortune.io import read_json
    from ragortune.tune.dataset import BUILD_FILE
    from ragortune.tune.trained import RECORD_KEY

    return len(read_json(data / BUILD_FILE, "run compare again")[RECORD_KEY]["fact_ids"])


def answer_rows(cfg: CompareConfig, arms: list[Any], questions: list[Question],
                kb: KnowledgeBase, min_score: float | None, stage: str,
                on_progress: ItemProgress | None) -> list[dict[str, Any]]:
    from ragortune.evaluate.arms import run_arms

    total = len(arms) * len([q for q in questions if q.answers is not None])
    done = {"n": 0}

    def tick(_arm: str, _i: int, _n: int) -> None:
        done["n"] += 1
        if on_progress:
            on_progress(stage, done["n"], total)

    answers = run_arms(arms, questions, kb, k=cfg.k, mode=cfg.mode, min_score=min_score,
                       max_tokens=cfg.max_tokens, on_progress=tick)
    return [a.row() for a in answers]


def to_answers(rows: list[dict[str, Any]]) -> list[Any]:
    from ragortune.evaluate.arms import ArmAnswer

    return [ArmAnswer(**{**row, "cited_docs": tuple(row["cited_docs"])}) for row in rows]


@dataclass
class CompareResult:
    out: Path
    run: dict[str, Any]
    evidence: Path
    decision: dict[str, Any] | None
    stages: dict[str, dict[str, Any]]
    files: dict[str, Path]
    # per arm its headline figures (accuracy on unseen phrasings, unseen facts, seen, stale,
    # abstention: each {value, n, low, high, split}), and the paired tests, as `--json` prints
    figures: dict[str, Any] = field(default_factory=dict)


def run_compare(cfg: CompareConfig, on_event: StageEvent | None = None,
                on_progress: ItemProgress | None = None) -> CompareResult:
    """Every stage in order, each reused from OUT when its inputs did not change."""
    _check(cfg)
    out, work = cfg.out, cfg.out / "work"
    cache = StageCache(out, on_event)
    models: dict[str | None, Any] = {}

    def load(adapter: str | None) -> Any:
        from ragortune.generate import load_llm

        if adapter not in models:
            models[adapter] = load_llm(cfg.llm, adapter=adapter)
        return models[adapter]

    emit = on_event or (lambda *_: None)
    emit("index v1", "start", 0.0, "")
    started = time.perf_counter()
    kb1, index_v1 = index(cfg, cfg.docs, work / "kb-v1", work / "docs")
    emit("index v1", "done", round(time.perf_counter() - started, 3),
         f"{index_v1['chunks_embedded']} chunks embedded")
    kb1_state = kb_state(kb1)

    measured_retrieval = None
    if is_beir(cfg.docs):
        measured_retrieval, _ = cache.run("retrieval", {"kb": kb1_state, "mode": cfg.mode,
                                                        "qrels": tree_hash(cfg.docs / "qrels")},
                                          lambda tmp: retrieval(kb1, cfg.docs, cfg.mode))

    synthesised = cfg.questions is None
    if synthesised:
        result, folder = cache.run("questions", {"kb": kb1_state, "llm": cfg.llm,
                                                 "n": cfg.synth_questions, "seed": cfg.seed},
                                   lambda tmp: {"path": synthesise(kb1, load(None),
                                                                   cfg.synth_questions, cfg.seed,
                                                                   tmp).name})
        questions_path = folder / result["path"]
    else:
        questions_path = cfg.questions
    questions = read_questions(questions_path, require_answers=True)

    gated, _ = cache.run("gate", {"kb": kb1_state, "questions": tree_hash(questions_path),
                                  "k": cfg.k, "mode": cfg.mode, "seed": cfg.seed},
                         lambda tmp: gate(kb1, questions, k=cfg.k, mode=cfg.mode, seed=cfg.seed))
    min_score = gated["threshold"]

    adapter: str | None = None
    training: dict[str, Any] | None = None
    if {"ft", "hybrid"} & set(cfg.arms):
        inputs = {"questions": tree_hash(questions_path), "llm": cfg.llm, "recipe": cfg.train,
                  "seed": cfg.seed, "held_out_facts": cfg.held_out_facts,
                  "paraphrases": tree_hash(cfg.paraphrases) if cfg.paraphrases else None}

        training, folder = cache.run(
            "adapter", inputs, lambda tmp: train_adapter(cfg, questions_path, tmp, on_progress))
        adapter = str(folder / training["adapter"])

    def arms_for(names: tuple[str, ...]) -> list[Any]:
        from ragortune.evaluate.arms import make_arms

        return make_arms(list(names), load, adapter)

    answer_inputs = {"llm": cfg.llm, "arms": cfg.arms, "k": cfg.k, "mode": cfg.mode,
                     "max_tokens": cfg.max_tokens, "min_score": min_score,
                     "adapter": training and fingerprint(training)}
    v1_rows, _ = cache.run(
        "answers v1", {**answer_inputs, "kb": kb1_state, "questions": tree_hash(questions_path)},
        lambda tmp: {"rows": answer_rows(cfg, arms_for(cfg.arms), questions, kb1, min_score,
                                         "answers v1", on_progress)})
    update: dict[str, Any] | None = None
    if cfg.docs_v2 is not None:
        update = _update(cfg, cache, kb1, kb1_state, answer_inputs, arms_for, min_score,
                         questions, on_progress)
    run = {"started_at": utc_now(), "config": _config_json(cfg),
           "questions": {"path": str(questions_path), "n": len(questions),
                         "synthesised": synthesised, "sha256": tree_hash(questions_path)},
           "index_v1": index_v1, "gate": gated, "training": training,
           "retrieval": measured_retrieval and {"mode": measured_retrieval["mode"],
                                                "means": measured_retrieval["means"]},
           "data": {"docs": tree_hash(cfg.docs),
                    "docs_v2": tree_hash(cfg.docs_v2) if cfg.docs_v2 else None}}
    answers_v1 = to_answers(v1_rows["rows"])
    write_answers(out, questions, v1_rows["rows"], update)
    evidence_path = write_evidence(out, run, answers_v1, update, adapter, gated,
                                   measured_retrieval)
    decision = decide_scenario(cfg, evidence_path) if cfg.scenario else None
    run["stages"] = cache.ran
    write_json_atomic(out / RUN_FILE, run, indent=2)
    files = {"evidence": evidence_path, **write_report(out)}
    return CompareResult(out, run, evidence_path, decision, cache.ran, files,
                         headline(evidence_path, run))


HEADLINE = ("accuracy", "accuracy_unseen_phrasing", "accuracy_unseen_fact", "accuracy_seen",
            "stale_rate", "new_fact_accuracy")


def headline(evidence: Path, run: dict[str, Any]) -> dict[str, Any]:
    """What `compare --json` reports: each arm's main figures as the evidence holds them,
    the training protocol and the paired tests (all counted questions, then per kind)."""
    from ragortune.io import read_json

    data = read_json(evidence, "run compare again")
    arms = {name: {**{k: a.get(k) for k in HEADLINE}, "abstention": a.get("abstention"),
                   "note": a.get("note")} for name, a in (data.get("arms") or {}).items()}
    exposure = run.get("by_exposure") or {}
    return {"arms": arms, "training": run.get("training") and run["training"].get("protocol"),
            "comparisons": {"all_counted": (data.get("comparisons") or {}).get("compare", []),
                            **{k: v["comparisons"] for k, v in exposure.items()
                               if isinstance(v, dict)}}}


def _update(cfg: CompareConfig, cache: StageCache, kb1: KnowledgeBase, kb1_state: str,
            answer_inputs: dict[str, Any], arms_for: Callable[[tuple[str, ...]], list[Any]],
            min_score: float | None, questions_v1: list[Question],
            on_progress: ItemProgress | None) -> dict[str, Any]:
    """The knowledge-update test: a copy of the v1 KB synced to v2 (what the re-index costs),
    then every arm asked the questions whose answer changed; fine-tuned arms still on their
    v1 adapter (the retraining they would need is costed from the adapter's training run)."""
    from ragortune.evaluate.update import changed_facts

    everything_v2 = read_questions(cfg.questions_v2, require_answers=True)
    changed = changed_facts(questions_v1, everything_v2)
    # only what changed can be stale or new: the v1 questions already measured the rest
    questions_v2 = [q for q in everything_v2 if q.id in changed]
    work = cfg.out / "work"

    def reindex(tmp: Path) -> dict[str, Any]:
        shutil.copytree(kb1.path, tmp / "kb")
        _, report = index(cfg, cfg.docs_v2, tmp / "kb", work / "docs")
        stage_documents(cfg.docs, work / "docs")  # the v1 KB's documents stay as they were
        return report

    inputs = {"kb": kb1_state, "docs_v2": tree_hash(cfg.docs_v2), "embedder": cfg.embedder}
    report, folder = cache.run("index v2", inputs, reindex)
    kb2 = open_kb(folder / "kb")
    rows, _ = cache.run(
        "answers v2", {**answer_inputs, "kb": kb_state(kb2),
                       "questions": tree_hash(cfg.questions_v2)},
        lambda tmp: {"rows": answer_rows(cfg, arms_for(cfg.arms), questions_v2, kb2, min_score,
                                         "answers v2", on_progress)})
    return {"index_v2": report, "rows": rows["rows"], "questions": questions_v2,
            "changed": changed}


def write_answers(out: Path, questions: list[Question], rows_v1: list[dict[str, Any]],
                  update: dict[str, Any] | None) -> None:
    """answers.csv (every arm's answer to every v1 question, with its gold answers; v2's in
    answers-v2.csv) and the questions asked, so a reader of the report can check the machine."""
    from ragortune.evaluate.evidence import write_csv

    batches = [("answers.csv", questions, rows_v1)]
    if update is not None:
        batches.append(("answers-v2.csv", update["questions"], update["rows"]))
    for name, asked, rows in batches:
        gold = {q.id: " | ".join(q.answers or ()) or "(unanswerable)" for q in asked}
        write_csv(out / name, [{**row, "gold": gold.get(row["query_id"])} for row in rows])
    write_jsonl_atomic(out / "questions.jsonl", ({"_id": q.id, "text": q.text,
                                                  "answers": list(q.answers or ())}
                                                 for q in questions))


def _check(cfg: CompareConfig) -> None:
    for name, path in (("--docs", cfg.docs), ("--docs-v2", cfg.docs_v2),
                       ("--questions", cfg.questions), ("--questions-v2", cfg.questions_v2),
                       ("--paraphrases", cfg.paraphrases), ("--scenario", cfg.scenario)):
        if path is not None and not Path(path).exists():
            raise InputError(f"{name} {path}: not found")
    if not 0 <= cfg.held_out_facts < 1:
        raise InputError(f"--held-out-facts must be in [0, 1) (a share of the facts), got "
                         f"{cfg.held_out_facts}")
    if (cfg.docs_v2 is None) != (cfg.questions_v2 is None):
        raise InputError("the update test needs both --docs-v2 and --questions-v2")
    if cfg.docs_v2 is not None and cfg.questions is None:
        raise InputError("the update test compares answers to the same questions on v1 and "
                         "v2: give --questions with --questions-v2")
    from ragortune.evaluate.arms import parse_arms

    parse_arms(",".join(cfg.arms))


def _config_json(cfg: CompareConfig) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}


def write_evidence(out: Path, run: dict[str, Any], answers_v1: list[Any],
                   update: dict[str, Any] | None, adapter: str | None,
                   gated: dict[str, Any], measured_retrieval: dict[str, Any] | None) -> Path:
    """evidence.json (schema 2) for the run: per arm the figures of `eval answers` (a
    fine-tuned arm's accuracy only on questions it never trained on, the gate's abstention
    cross-validated), the update test's stale rates, and the paired comparisons."""
    from ragortune.evaluate.arms import ARM_KINDS, Arm, summarise
    from ragortune.evaluate.evidence import run_id, update_evidence
    from ragortune.evaluate.heldout import CrossValidated, arms_evidence, retrieval_figures
    from ragortune.evaluate.update import UpdateResult, evidence_arms

    dataset = _identity(run)
    rid = run_id("compare", run["started_at"])
    names = list(dict.fromkeys(a.arm for a in answers_v1))
    arms = [Arm(name, ARM_KINDS[name][0], None, adapter if ARM_KINDS[name][1] else None)
            for name in names]
    cross = gated.get("cross_validated")
    scores, figures, comparisons = arms_evidence(
        answers_v1, arms, summarise(answers_v1), run=rid, dataset=dataset["hash"],
        gate=CrossValidated.from_json(cross) if cross else None)
    run["by_exposure"] = by_exposure(answers_v1, scores, figures, run=rid,
                                     dataset=dataset["hash"])
    sections: dict[str, Any] = {"arms": figures, "run": run, "comparisons": comparisons}
    if measured_retrieval is not None:
        per_query = {k: np.array(v) for k, v in measured_retrieval["per_query"].items()}
        sections["retrieval"] = retrieval_figures(per_query, measured_retrieval["ids"],
                                                  split="all", run=rid, dataset=dataset["hash"])
    if update is not None:
        result = UpdateResult(answers_v1, to_answers(update["rows"]), _report(run["index_v1"]),
                              _report(update["index_v2"]), update["changed"],
                              update["index_v2"].get("cpu_seconds"))
        per_arm = result.per_arm(arms, update["questions"])
        for arm, values in evidence_arms(per_arm, run=rid, dataset=dataset["hash"]).items():
            figures[arm] = {**figures[arm], **values}
        sections["update"] = {"run_id": rid, "arms": per_arm,
                              "new_facts": len(update["changed"]),
                              "index_v2": update["index_v2"]}
    path = out / "evidence.json"
    path.unlink(missing_ok=True)  # one compare run = one evidence file, never merged
    return update_evidence(out, sections, "compare", dataset=dataset)


def by_exposure(answers: list[Any], scores: dict[str, Any], figures: dict[str, Any], *,
                run: str, dataset: str) -> dict[str, Any]:
    """The knowledge-injection view: the fine-tuned arm sorts the questions into unseen
    phrasings of trained facts and unseen facts; the arms that trained on nothing (base, rag)
    are scored on those same questions (their `accuracy_unseen_phrasing` / `_fact`, split
    `all`, `subset_of` the fine-tuned arm), and every pair of arms is tested on each kind
    apart (exact McNemar, Holm over the pairs). Empty without a fine-tuned arm."""
    from dataclasses import replace

    from ragortune.evaluate.arms import ARM_KINDS
    from ragortune.evaluate.evidence import figure
    from ragortune.evaluate.heldout import compare_arms
    from ragortune.evaluate.stats import proportion
    from ragortune.tune.trained import UNSEEN_FACT, UNSEEN_PHRASING

    tuned = next((s for name, s in scores.items() if ARM_KINDS[name][1] and s.exposure), None)
    if tuned is None:
        return {}
    right = {(a.arm, a.query_id): bool(a.correct) for a in answers if a.answerable}
    out: dict[str, Any] = {"fine_tuned_arm": tuned.arm}
    for kind in (UNSEEN_PHRASING, UNSEEN_FACT):
        ids = frozenset(q for q, k in tuned.exposure.items() if k == kind)
        for name, score in scores.items():
            if score.exposure:  # a fine-tuned arm: heldout already scored it by its own record
                continue
            values = [right[name, q] for q in sorted(ids) if (name, q) in right]
            fig = figure(proportion(values) if values else None, split="all", run=run,
                         dataset=dataset)
            figures[name][f"accuracy_{kind}"] = fig and {**fig, "subset_of": tuned.arm}
        subset = {name: replace(s, counted=s.counted & ids) for name, s in scores.items()}
        out[kind] = {"questions": len([q for q in ids if (tuned.arm, q) in right]),
                     "comparisons": [c.to_json() for c in compare_arms(answers, subset)]}
    return out


def _report(data: dict[str, Any]) -> SyncReport:
    docs = data["documents"]
    return SyncReport(added=docs["added"], updated=docs["updated"], unchanged=docs["unchanged"],
                      deleted=docs["deleted"], chunks_embedded=data["chunks_embedded"],
                      chunks_reused=data["chunks_reused"], chunks_deleted=data["chunks_deleted"],
                      embedding_tokens=data["embedding_tokens"], seconds=data["seconds"])


def _identity(run: dict[str, Any]) -> dict[str, Any]:
    """The data set a compare run measured (evidence schema 2 needs every writer to name it)."""
    from ragortune.evaluate.evidence import dataset_hash

    files = {"corpus": run["data"]["docs"], "queries": run["questions"]["sha256"]}
    if run["data"].get("docs_v2"):
        files["corpus_v2"] = run["data"]["docs_v2"]
    return {"name": "compare", "path": run["questions"]["path"], "split": None, "files": files,
            "hash": dataset_hash(files)}


def decide_scenario(cfg: CompareConfig, evidence: Path) -> dict[str, Any]:
    """Cost model, Monte Carlo and decision for the scenario with the measured evidence;
    writes cost.json, decision.json and the cost chart into OUT."""
    from ragortune.cost.analysis import analyse, price_book_for
    from ragortune.cost.measured import read_evidence
    from ragortune.cost.plot import plot_cumulative
    from ragortune.cost.scenario import load_scenario
    from ragortune.decide import candidates, decide

    scenario = load_scenario(cfg.scenario)
    measured = read_evidence(evidence)
    analysis = analyse(scenario, price_book_for(scenario, cfg.scenario), measured)
    decision = decide(analysis, measured)
    write_json_atomic(cfg.out / "cost.json", analysis.to_dict(str(cfg.scenario)), indent=2)
    data = decision.to_dict()
    write_json_atomic(cfg.out / "decision.json", data, indent=2)
    plot_cumulative(analysis.simulation, analysis.pairs, cfg.out / "cost.png",
                    title=scenario.name, bands=decision.monte_carlo["bands"],
                    pick=decision.option, options=candidates(analysis.model))
    return data
