"""Chat fine-tuning data from question/answer pairs: read, expand with paraphrases, split, write.

Input is what users already have: BEIR-layout queries carrying `answers` (a folder with
`queries.jsonl`, or the file itself) or the JSONL written by `ragortune synth`, read by
`ragortune.questions.read_questions`. A question's first gold answer is the reference answer
it is trained on. Output is OpenAI chat JSONL, which `tune validate`, `tune train` and
`tune remote` all read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragortune.errors import InputError
from ragortune.io import write_json_atomic, write_jsonl_atomic
from ragortune.questions import Question, read_questions
from ragortune.tune.trained import RECORD_KEY, read_paraphrases, record_training

BUILD_FILE = "ragortune_build.json"  # how the data was built, beside train.jsonl; retraining repeats it

# (question, answer, n) -> up to n reworded (question, answer) pairs carrying the same fact.
Paraphraser = Callable[[str, str, int], list[tuple[str, str]]]


@dataclass(frozen=True)
class Example:
    """One chat example; `fact_id` keeps every variant of a fact on the same side of the split."""

    fact_id: str
    messages: list[dict[str, str]]
    variant: int = 0


@dataclass(frozen=True)
class BuildResult:
    train_path: Path
    validation_path: Path | None
    n_facts: int
    n_train: int
    n_validation: int
    n_paraphrases: int
    skipped_unanswerable: int


def build_examples(
    questions: Iterable[Question],
    *,
    system: str | None = None,
    refusal: str | None = None,
    paraphrase: Paraphraser | None = None,
    n_paraphrases: int = 0,
    paraphrases: Mapping[str, Sequence[str]] | None = None,
    original_wording: bool = True,
) -> tuple[list[Example], int]:
    """One example per question (answered with its first gold answer) plus up to
    `n_paraphrases` reworded variants of each (knowledge injection needs several phrasings of
    a fact, not one): hand-written ones from `paraphrases` (question id -> texts, trained with
    the question's answer) first, then the `paraphrase` model's. `original_wording=False`
    trains on the rewordings only, so the question as written stays unseen and can test the
    adapter. Unanswerable questions become `refusal` examples when a refusal text is given
    and are skipped otherwise. Returns the examples and the number skipped."""
    examples: list[Example] = []
    skipped = 0
    for question in questions:
        answer = question.answers[0] if question.answers else refusal
        if answer is None:
            skipped += 1
            continue
        variants = [(question.text, answer)]
        seen = {(question.text.lower(), answer.lower())}
        offered = [(t, answer) for t in (paraphrases or {}).get(question.id, ())]
        if paraphrase is not None and n_paraphrases > len(offered):
            offered += paraphrase(question.text, answer, n_paraphrases - len(offered))
        for q, a in offered[:n_paraphrases]:
            key = (q.strip().lower(), a.strip().lower())
            if q.strip() and a.strip() and key not in seen:
                seen.add(key)
                variants.append((q.strip(), a.strip()))
        for i, (q, a) in enumerate(variants):
            if i == 0 and not original_wording:
                continue
            messages = [{"role": "system", "content": system}] if system else []
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            examples.append(Example(question.id, messages, i))
    return examples, skipped


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def split(
    examples: Sequence[Example], *, validation: float, seed: int = 0, by: str = "fact"
) -> tuple[list[Example], list[Example]]:
    """Deterministic train/validation split. `by="fact"` holds out whole facts (every variant
    stays on one side, so validation never sees a fact it trained on); `by="variant"` holds out
    the last paraphrase of each fact that has several (measures recall under rewording)."""
    if not 0 <= validation < 1:
        raise InputError(f"--validation must be in [0, 1), got {validation}")
    if validation == 0:
        return list(examples), []
    if by == "variant":
        last: dict[str, int] = {}
        for ex in examples:
            last[ex.fact_id] = max(last.get(ex.fact_id, 0), ex.variant)
        held = [ex for ex in examples if last[ex.fact_id] > 0 and ex.variant == last[ex.fact_id]]
        kept = [ex for ex in examples if not (last[ex.fact_id] > 0 and ex.variant == last[ex.fact_id])]
        return kept, held
    if by != "fact":
        raise InputError(f"--split-by must be `fact` or `variant`, got {by!r}")
    facts = sorted({ex.fact_id for ex in examples}, key=lambda f: _rank(seed, f))
    n_held = min(len(facts) - 1, max(1, round(len(facts) * validation))) if len(facts) > 1 else 0
    held_ids = set(facts[:n_held])
    return (
        [ex for ex in examples if ex.fact_id not in held_ids],
        [ex for ex in examples if ex.fact_id in held_ids],
    )


def write_jsonl(path: str | Path, examples: Iterable[Example]) -> Path:
    """Write chat JSONL atomically."""
    return write_jsonl_atomic(path, ({"messages": ex.messages} for ex in examples))


def build_dataset(
    source: str | Path,
    out_dir: str | Path,
    *,
    system: str | None = None,
    refusal: str | None = None,
    validation: float = 0.1,
    split_by: str = "fact",
    seed: int = 0,
    paraphrase: Paraphraser | None = None,
    n_paraphrases: int = 0,
    paraphraser: dict[str, Any] | None = None,
    paraphrase_file: str | Path | None = None,
    original_wording: bool = True,
) -> BuildResult:
    """`tune build`: read pairs, make chat examples (with paraphrases), split, write
    `train.jsonl` and (when there is a validation share) `validation.jsonl` into `out_dir`,
    and `ragortune_build.json`: these settings (`paraphraser` says which model wrote the
    paraphrases, `paraphrase_file` which hand-written ones were used), so a retraining on new
    facts can build its data the same way, and under `trained` what the adapter will have
    seen (`tune.trained`), so that no evaluation scores it on its own training questions.

    The knowledge-injection protocol: hand-written or synthesised paraphrases
    (`paraphrase_file`, `n_paraphrases`), `original_wording=False`, and a `validation` share
    of whole facts held out (`split_by="fact"`); the evaluation then reports held-out
    phrasings and held-out facts apart."""
    questions = read_questions(source, require_answers=True)
    if not original_wording and paraphrase_file is None and (paraphrase is None or n_paraphrases < 1):
        raise InputError("training on paraphrases only needs paraphrases: give a paraphrase "
                         "file (--paraphrase-file) or --paraphrases N with a model, or "
                         "keep the original wording")
    hand_written = None
    if paraphrase_file is not None:
        hand_written = read_paraphrases(paraphrase_file, [q.id for q in questions])
        n_paraphrases = n_paraphrases or max((len(v) for v in hand_written.values()), default=0)
    examples, skipped = build_examples(
        questions, system=system, refusal=refusal, paraphrase=paraphrase,
        n_paraphrases=n_paraphrases, paraphrases=hand_written, original_wording=original_wording,
    )
    if not examples:
        raise InputError(
            f"{source}: every question is unanswerable (empty `answers`); give --refusal TEXT "
            "to train refusals, or use queries that have answers"
        )
    train, held = split(examples, validation=validation, seed=seed, by=split_by)
    out = Path(out_dir)
    train_path = write_jsonl(out / "train.jsonl", train)
    val_path = write_jsonl(out / "validation.jsonl", held) if held else None
    stale_val = out / "validation.jsonl"
    if val_path is None and stale_val.is_file():
        stale_val.unlink()  # `tune train` would pick up a previous build's held-out facts
    paraphrase_path = str(Path(paraphrase_file).resolve()) if paraphrase_file else None
    settings = {"system": system, "refusal": refusal, "validation": validation,
                "split_by": split_by, "seed": seed, "n_paraphrases": n_paraphrases,
                "paraphraser": paraphraser if n_paraphrases > 0 and paraphrase else None,
                "paraphrase_file": paraphrase_path, "original_wording": original_wording}
    trained = record_training(_triples(train), _triples(held), original_wording=original_wording,
                              paraphrase_file=paraphrase_path)
    record = {"source": str(Path(source).resolve()), "settings": settings,
              "n_train": len(train), "n_validation": len(held), RECORD_KEY: trained.to_dict()}
    write_json_atomic(out / BUILD_FILE, record, indent=2)
    return BuildResult(
        train_path=train_path,
        validation_path=val_path,
        n_facts=len({ex.fact_id for ex in examples}),
        n_train=len(train),
        n_validation=len(held),
        n_paraphrases=sum(1 for ex in examples if ex.variant > 0),
        skipped_unanswerable=skipped,
    )


def _triples(examples: Iterable[Example]) -> list[tuple[str, str, str]]:
    """(fact id, question, answer) of chat examples: the user turn and the assistant turn."""
    return [(ex.fact_id, ex.messages[-2]["content"], ex.messages[-1]["content"])
            for ex in examples]


_PARAPHRASE_PROMPT = """Rewrite the question and answer below {n} times with different wording.
Keep every fact, name and number exactly. Reply only with the rewrites, in this form:
Q1: ...
A1: ...

Question: {question}
Answer: {answer}"""

_LINE = re.compile(r"^\s*([QA])\s*(\d+)\s*[:.)-]\s*(.+?)\s*$", re.IGNORECASE)


def llm_paraphraser(llm: Any, *, temperature: float = 0.7, max_tokens: int = 384) -> Paraphraser:
    """A Paraphraser backed by any `LLM` (local or an OpenAI-compatible endpoint). Variants the
    model garbles (unparseable lines) are dropped, so fewer than n may come back."""

    def paraphrase(question: str, answer: str, n: int) -> list[tuple[str, str]]:
        prompt = _PARAPHRASE_PROMPT.format(n=n, question=question, answer=answer)
        text = llm.complete(
            [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=temperature
        ).text
        return parse_paraphrases(text)[:n]

    return paraphrase


def parse_paraphrases(text: str) -> list[tuple[str, str]]:
    """`Q1: ... / A1: ...` lines -> [(question, answer)], pairing by number."""
    questions: dict[str, str] = {}
    answers: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            (questions if m.group(1).upper() == "Q" else answers)[m.group(2)] = m.group(3)
    return [(questions[k], answers[k]) for k in sorted(questions, key=int) if k in answers]
