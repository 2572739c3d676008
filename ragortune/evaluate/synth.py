"""Question/answer pairs generated from a KB's chunks, for users without labelled questions.

Each pair is asked of one chunk, and that chunk is its qrel. A pair is kept only when the
answer appears in the chunk (SQuAD-normalised, whole words) but not in the question (a
question that gives its answer away tests nothing), and the question is not a
near-duplicate of one already kept (cosine >= 0.92 between question embeddings, or the
same normalised text). The output is a BEIR folder whose corpus is the KB's chunks, so
`eval retrieval`, `eval answers` and the fine-tuning dataset builder read it as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragortune.errors import InputError
from ragortune.generate.llm import LLM, Message
from ragortune.io import write_atomic, write_jsonl_atomic
from ragortune.judge import contains_gold, normalize_answer
from ragortune.kb import KnowledgeBase
from ragortune.questions import Question
from ragortune.store import StoredChunk

DUPLICATE_COSINE = 0.92
MAX_ANSWER_WORDS = 20
_QUESTION = re.compile(r"question\s*:\s*(.+)", re.IGNORECASE)
_ANSWER = re.compile(r"answer\s*:\s*(.+)", re.IGNORECASE)

SynthProgress = Callable[[int, int], None]  # pairs kept, pairs wanted


@dataclass(frozen=True)
class Pair:
    """A generated question (its one gold answer copied from the chunk) and where it came from."""

    question: Question
    chunk_id: str
    doc_id: str
    source: str


@dataclass
class SynthResult:
    pairs: list[Pair]
    attempts: int
    dropped: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def synth_messages(passage: str) -> list[Message]:
    return [{"role": "user", "content": (
        "Read the passage and write one question that it answers, then the answer copied "
        f"word for word from the passage.\n\nPassage:\n{passage.strip()}\n\n"
        "Reply in exactly this format:\nQuestion: <the question>\nAnswer: <a few words from "
        "the passage>")}]


def parse_pair(text: str) -> tuple[str, str] | None:
    """(question, answer) from the model's reply, or None when either line is missing."""
    question = _QUESTION.search(text)
    answer = _ANSWER.search(text)
    if not question or not answer:
        return None
    q = question.group(1).strip().strip('"').strip()
    a = answer.group(1).strip().strip('"').strip().rstrip(".").strip()
    return (q, a) if q and a else None


def generate_pairs(kb: KnowledgeBase, llm: LLM, n: int, *, seed: int = 0,
                   max_tokens: int = 96, on_progress: SynthProgress | None = None
                   ) -> SynthResult:
    """Ask the LLM for one pair per chunk, in a seeded random chunk order, until `n` are kept
    or 3 x n chunks were tried (or the chunks run out)."""
    if n < 1:
        raise InputError(f"--n must be at least 1, not {n}")
    chunks = kb.chunks()
    if not chunks:
        raise InputError(f"{kb.path}: the knowledge base is empty; run `ragortune ingest` first")
    order = np.random.default_rng(seed).permutation(len(chunks))[: 3 * n]
    result = SynthResult(pairs=[], attempts=0, dropped={
        "unparsable": 0, "answer_not_in_chunk": 0, "answer_in_question": 0, "near_duplicate": 0})
    kept_vectors = np.zeros((0, kb.settings.dimension), dtype=np.float32)
    seen_text: set[str] = set()
    for index in order:
        if len(result.pairs) >= n:
            break
        chunk = chunks[int(index)]
        completion = llm.complete(synth_messages(chunk.text), max_tokens=max_tokens)
        result.attempts += 1
        result.prompt_tokens += completion.prompt_tokens
        result.completion_tokens += completion.completion_tokens
        parsed = parse_pair(completion.text)
        if parsed is None:
            result.dropped["unparsable"] += 1
            continue
        question, answer = parsed
        if (len(normalize_answer(answer).split()) > MAX_ANSWER_WORDS
                or not contains_gold(chunk.text, [answer])):
            result.dropped["answer_not_in_chunk"] += 1
            continue
        if contains_gold(question, [answer]):
            result.dropped["answer_in_question"] += 1
            continue
        vector = kb.embedder.embed([question])
        key = normalize_answer(question)
        if key in seen_text or (len(kept_vectors) and
                                float((kept_vectors @ vector[0]).max()) >= DUPLICATE_COSINE):
            result.dropped["near_duplicate"] += 1
            continue
        seen_text.add(key)
        kept_vectors = np.vstack([kept_vectors, vector])
        qid = f"synth-{len(result.pairs) + 1:04d}"
        result.pairs.append(Pair(Question(qid, question, (answer,)), chunk.chunk_id,
                                 chunk.doc_id, chunk.source))
        if on_progress:
            on_progress(len(result.pairs), n)
    return result


def write_beir(out_dir: Path, kb: KnowledgeBase, result: SynthResult) -> dict[str, Path]:
    """corpus.jsonl (every chunk, `_id` = chunk id), queries.jsonl, qrels/test.tsv; each file
    is written atomically."""
    paths = {"corpus": out_dir / "corpus.jsonl", "queries": out_dir / "queries.jsonl",
             "qrels": out_dir / "qrels" / "test.tsv"}
    write_jsonl_atomic(paths["corpus"], (_corpus_row(c) for c in kb.chunks()))
    write_jsonl_atomic(paths["queries"], (
        {"_id": p.question.id, "text": p.question.text, "answers": list(p.question.answers or ()),
         "metadata": {"chunk_id": p.chunk_id, "doc_id": p.doc_id, "source": p.source}}
        for p in result.pairs))
    write_atomic(paths["qrels"], "query-id\tcorpus-id\tscore\n" + "".join(
        f"{p.question.id}\t{p.chunk_id}\t1\n" for p in result.pairs))
    return paths


def _corpus_row(chunk: StoredChunk) -> dict[str, object]:
    title = " > ".join(part for part in (chunk.title, chunk.heading) if part)
    return {"_id": chunk.chunk_id, "title": title, "text": chunk.text,
            "metadata": {"doc_id": chunk.doc_id, "source": chunk.source}}
