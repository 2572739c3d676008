"""BEIR data set loading: what a valid folder gives; a precise message for each malformed line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragortune.errors import InputError
from ragortune.evaluate.datasets import load_dataset

SCIFACT = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "scifact"

CORPUS = [
    {"_id": "d1", "title": "Paris", "text": "Paris is the capital of France."},
    {"_id": "d2", "title": "", "text": "The Eiffel Tower was finished in 1889."},
    {"_id": 3, "text": "An integer id and no title."},
]
QUERIES = [
    {"_id": "q1", "text": "What is the capital of France?", "answers": ["Paris"]},
    {"_id": "q2", "text": "When was the Eiffel Tower finished?"},
    {"_id": "q3", "text": "What is the capital of Mars?", "answers": []},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\t3\t0\n"


def jsonl(rows: list) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def write_dataset(root: Path, corpus: str | None = None, queries: str | None = None,
                  qrels: str | None = None) -> Path:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(jsonl(CORPUS) if corpus is None else corpus)
    (root / "queries.jsonl").write_text(jsonl(QUERIES) if queries is None else queries)
    (root / "qrels" / "test.tsv").write_text(QRELS if qrels is None else qrels)
    return root


def test_valid_dataset_loads_queries_answers_qrels_and_corpus(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path))
    assert ds.corpus_size == 3 and ds.warnings == []
    assert [d.doc_id for d in ds.corpus()] == ["d1", "d2", "3"]
    assert ds.queries["q1"].answers == ("Paris",) and ds.queries["q1"].answerable is True
    assert ds.queries["q2"].answers is None and ds.queries["q2"].answerable is None
    assert ds.queries["q3"].answers == () and ds.queries["q3"].answerable is False
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "3": 0}}
    assert ds.num_qrels == 3


def test_qrels_without_header_and_space_separated_are_accepted(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path, qrels="q1 d1 1\n\nq2 d2 1\n"))
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}


def test_qrels_document_missing_from_corpus_is_a_warning(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path, qrels=QRELS + "q1\tghost\t1\n"))
    assert len(ds.warnings) == 1 and "ghost" in ds.warnings[0]
    assert ds.qrels["q1"]["ghost"] == 1


def test_split_none_loads_no_qrels(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path), split=None)
    assert ds.qrels == {} and len(ds.queries) == 3


def test_missing_split_names_the_splits_found(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"split 'dev' missing; splits found: test"):
        load_dataset(write_dataset(tmp_path), split="dev")


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="data set folder not found"):
        load_dataset(tmp_path / "nope")
    root = write_dataset(tmp_path / "ds")
    (root / "queries.jsonl").unlink()
    with pytest.raises(InputError, match=r"queries\.jsonl: file missing"):
        load_dataset(root)


def test_empty_qrels_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no judgements"):
        load_dataset(write_dataset(tmp_path, qrels="query-id\tcorpus-id\tscore\n"))


GOOD_C, GOOD_Q = jsonl(CORPUS), jsonl(QUERIES)
MALFORMED = {
    # name: (file to break, its content, line, field, words the message must hold)
    "corpus bad json": ("corpus.jsonl", GOOD_C + '{"_id": "d4", "text": }\n', 4, None,
                        "not valid JSON"),
    "corpus missing _id": ("corpus.jsonl", jsonl([{"text": "no id"}]), 1, "_id", "missing"),
    "corpus missing text": ("corpus.jsonl", GOOD_C + jsonl([{"_id": "d9"}]), 4, "text", "missing"),
    "corpus title not a string": ("corpus.jsonl", jsonl([{"_id": "a", "title": 5, "text": "x"}]),
                                  1, "title", "not a string"),
    "corpus duplicate id": ("corpus.jsonl", GOOD_C + jsonl([{"_id": "d2", "text": "again"}]), 4,
                            "_id", "duplicate id 'd2' (first on line 2)"),
    "corpus id null": ("corpus.jsonl", jsonl([{"_id": None, "text": "x"}]), 1, "_id",
                       "not a non-empty string"),
    "corpus line is an array": ("corpus.jsonl", GOOD_C + "[1, 2]\n", 4, "line", "not an object"),
    "queries missing text": ("queries.jsonl", GOOD_Q + jsonl([{"_id": "q9"}]), 4, "text",
                             "missing"),
    "queries answers a string": ("queries.jsonl",
                                 jsonl([{"_id": "q1", "text": "t?", "answers": "Paris"}]), 1,
                                 "answers", "not a list of strings"),
    "queries answers hold a number": ("queries.jsonl",
                                      jsonl([{"_id": "q1", "text": "t?", "answers": ["a", 7]}]),
                                      1, "answers", "not a list of strings"),
    "queries answers hold a blank": ("queries.jsonl",
                                     jsonl([{"_id": "q1", "text": "t?", "answers": [" "]}]),
                                     1, "answers", "empty answer"),
    "queries duplicate id": ("queries.jsonl", GOOD_Q + jsonl([{"_id": "q1", "text": "again"}]), 4,
                             "_id", "duplicate id 'q1' (first on line 1)"),
    "queries not utf-8": ("queries.jsonl", None, 2, None, "not UTF-8"),
    "qrels two columns": ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\n", 2, "row",
                          "2 columns, expected 3"),
    "qrels trec four columns": ("qrels/test.tsv", "q1 0 d1 1\n", 1, "row", "TREC"),
    "qrels score not integer": ("qrels/test.tsv", "q1\td1\t1\nq2\td2\tyes\n", 2, "score",
                                "'yes' is not an integer"),
    "qrels header not first": ("qrels/test.tsv", "q1\td1\t1\nquery-id\tcorpus-id\tscore\n", 2,
                               "score", "only line 1 may be the header"),
    "qrels unknown query": ("qrels/test.tsv", QRELS + "q404\td1\t1\n", 5, "query-id",
                            "'q404' is not in queries.jsonl"),
    "qrels duplicate pair": ("qrels/test.tsv", QRELS + "q1\td1\t2\n", 5, "corpus-id",
                             "(first on line 2)"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_file_error_names_file_line_and_field(tmp_path: Path, case: str) -> None:
    name, content, line, field, words = MALFORMED[case]
    root = write_dataset(tmp_path)
    target = root / name
    if content is None:  # a Latin-1 byte in the second line
        target.write_bytes(jsonl(QUERIES[:1]).encode() + b'{"_id": "q2", "text": "caf\xe9"}\n')
    else:
        target.write_text(content)
    with pytest.raises(InputError) as info:
        load_dataset(root)
    message = str(info.value)
    assert message.startswith(f"{target}:{line}: " if line else f"{target}: ")
    assert field is None or f"field '{field}'" in message
    assert words in message


def test_queries_need_ids_since_qrels_point_at_them(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, queries=jsonl(QUERIES[:2] + [{"text": "No id?"}]))
    with pytest.raises(InputError, match=r"queries\.jsonl:3: field '_id': missing"):
        load_dataset(root)


@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact not found at {SCIFACT}")
def test_scifact_loads_with_published_counts() -> None:
    ds = load_dataset(SCIFACT)
    assert ds.corpus_size == 5183
    assert len(ds.queries) == 300
    assert ds.num_qrels == 339 and len(ds.qrels) == 300
    assert ds.warnings == []
    assert all(q.answers is None for q in ds.queries.values())
