"""Evaluation data sets in BEIR layout, and bare question files.

A data set is a folder with `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
(`_id`, `text`, optional `answers`) and `qrels/<split>.tsv` (`query-id corpus-id score`).
Every malformed line raises `InputError` naming the file, the line, the field and the fix.
Queries are read by `ragortune.questions.read_questions`, the reader of every question file.

Decisions a caller must know:
- `answers` absent means "no answer labels"; an empty list marks an unanswerable question.
- A qrels row whose query is not in `queries.jsonl` is an error (that query could never be
  run); a row whose document is not in the corpus is a warning in `Dataset.warnings`
  (some published sets have such rows; the document just can never be retrieved).
- Ids may be JSON strings or integers; both become strings, as qrels ids are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragortune.errors import InputError
from ragortune.io import read_jsonl
from ragortune.questions import Question, field_error, read_questions, record_id

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass(frozen=True)
class CorpusEntry:
    """One line of a data set's corpus; `doc_id` is what qrels point at. (What the KB indexes
    is a `ragortune.documents.loaders.Document`, loaded from the same file.)"""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class Dataset:
    """Queries and qrels in memory; the corpus is streamed from `corpus_path` on demand."""

    path: Path
    split: str | None
    queries: dict[str, Question]
    qrels: dict[str, dict[str, int]]
    corpus_path: Path
    corpus_size: int | None = None
    warnings: list[str] = field(default_factory=list)

    def corpus(self) -> Iterator[CorpusEntry]:
        """Stream the corpus, validating each line (errors name the file and line)."""
        seen: dict[str, int] = {}
        for line_no, obj in read_jsonl(self.corpus_path, "corpus file"):
            if not isinstance(obj, dict):
                raise field_error(self.corpus_path, line_no, "line",
                                  f"a JSON {type(obj).__name__}, not an object",
                                  "write one JSON object per line")
            doc_id = record_id(obj, self.corpus_path, line_no, required=True)
            if doc_id in seen:
                raise field_error(
                    self.corpus_path, line_no, "_id",
                    f"duplicate id {doc_id!r} (first on line {seen[doc_id]})",
                    "give every document a unique `_id`",
                )
            seen[doc_id] = line_no
            text = _get_str(obj, "text", self.corpus_path, line_no, required=True)
            title = _get_str(obj, "title", self.corpus_path, line_no, required=False)
            yield CorpusEntry(doc_id=doc_id, title=title or "", text=text or "")

    @property
    def num_qrels(self) -> int:
        return sum(len(docs) for docs in self.qrels.values())


def load_dataset(
    path: str | Path, split: str | None = "test", check_corpus: bool = True
) -> Dataset:
    """Load a BEIR-layout folder; `split=None` loads no qrels (answer-only evaluation).

    With `check_corpus`, one streaming pass validates every corpus line, counts the
    documents and lists qrels documents that are not in the corpus.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{root}: data set folder not found; pass a folder with corpus.jsonl, "
                         "queries.jsonl and qrels/<split>.tsv")
    corpus_path = root / "corpus.jsonl"
    queries_path = root / "queries.jsonl"
    for required in (corpus_path, queries_path):
        if not required.is_file():
            raise InputError(f"{required}: file missing; a BEIR data set folder needs "
                             "corpus.jsonl and queries.jsonl")
    queries = {q.id: q for q in read_questions(queries_path, require_id=True)}

    qrels: dict[str, dict[str, int]] = {}
    if split is not None:
        qrels_path = root / "qrels" / f"{split}.tsv"
        if not qrels_path.is_file():
            found = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
            raise InputError(
                f"{qrels_path}: qrels for split {split!r} missing; splits found: "
                f"{', '.join(found) or 'none'} (choose one with --split)"
            )
        qrels = load_qrels(qrels_path, queries)
        if not qrels:
            raise InputError(
                f"{qrels_path}: no judgements; write `query-id<TAB>corpus-id<TAB>score` rows "
                "(or pass no split to evaluate answers only)"
            )

    dataset = Dataset(path=root, split=split, queries=queries, qrels=qrels, corpus_path=corpus_path)
    if not check_corpus:
        return dataset
    doc_ids = {doc.doc_id for doc in dataset.corpus()}
    judged = {doc for docs in qrels.values() for doc in docs}
    missing = sorted(judged - doc_ids)
    warnings = []
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        warnings.append(f"{len(missing)} qrels documents are not in {corpus_path.name} "
                        f"({shown}); they can never be retrieved, so recall is capped")
    return Dataset(path=root, split=split, queries=queries, qrels=qrels,
                   corpus_path=corpus_path, corpus_size=len(doc_ids), warnings=warnings)


def load_qrels(
    path: str | Path, queries: dict[str, Question] | None = None
) -> dict[str, dict[str, int]]:
    """Read `query-id corpus-id score` rows (tab- or space-separated, optional header line).

    With `queries`, every query id must be one of them.
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for line_no, raw in _read_lines(path):
        cols = raw.split("\t") if "\t" in raw else raw.split()
        cols = [c.strip() for c in cols]
        if line_no == 1 and tuple(c.lower() for c in cols) == QRELS_HEADER:
            continue
        if len(cols) != 3:
            hint = (" (this looks like TREC `qid iter docid rel`: drop the second column)"
                    if len(cols) == 4 else "")
            raise field_error(path, line_no, "row", f"{len(cols)} columns, expected 3{hint}",
                              "write `query-id<TAB>corpus-id<TAB>score`")
        qid, doc_id, score = cols
        if not qid or not doc_id:
            raise field_error(path, line_no, "query-id" if not qid else "corpus-id", "empty id",
                              "fill in the id")
        try:
            grade = int(score)
        except ValueError:
            raise field_error(path, line_no, "score", f"{score!r} is not an integer",
                              "use integer relevance grades (0 = not relevant, 1, 2, ... = relevant)"
                              + ("; only line 1 may be the header `query-id corpus-id score`"
                                 if line_no > 1 else "")) from None
        if queries is not None and qid not in queries:
            raise field_error(path, line_no, "query-id", f"query {qid!r} is not in queries.jsonl",
                              "add the query or remove its qrels rows")
        key = (qid, doc_id)
        if key in first_line:
            raise field_error(path, line_no, "corpus-id",
                              f"duplicate judgement for query {qid!r}, document {doc_id!r} "
                              f"(first on line {first_line[key]})", "keep one row per pair")
        first_line[key] = line_no
        qrels.setdefault(qid, {})[doc_id] = grade
    return qrels


# -- line readers and field checks ----------------------------------------------------------

def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with 1-based numbers; bytes are decoded per line so errors name it."""
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise field_error(path, line_no, "line", f"not UTF-8 ({exc.reason})",
                                  "save the file as UTF-8") from None
            text = text.rstrip("\r\n")
            if text.strip():
                yield line_no, text


def _get_str(
    obj: dict[str, Any], key: str, path: Path, line_no: int, required: bool
) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise field_error(path, line_no, key, "missing", f"add a string `{key}`")
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise field_error(path, line_no, key, f"a {type(value).__name__}, not a string",
                               f"make `{key}` a string")
    return value
