"""Issue 16 item 4: property-based fuzzing of every reader of user files. Whatever the bytes,
a reader returns its result or raises the documented user error; never anything else.

`RAGORTUNE_FUZZ_EXAMPLES` sets the examples per property (default 40 keeps `make test`
short; bench/robustness.py runs more). `CASES` counts the examples actually run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ragortune.documents.chunk import chunk_document
from ragortune.documents.loaders import SUFFIXES, Document, load_file
from ragortune.errors import InputError, RagortuneError

EXAMPLES = int(os.environ.get("RAGORTUNE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
CASES: Counter[str] = Counter()

json_leaf = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
hostile_text = st.text(alphabet=st.characters(codec=None), max_size=400)  # surrogates included
special_lines = st.sampled_from([
    b"[" * 5000 + b"]" * 5000, b'{"a": ' + b"1" * 5000 + b"}", b"\xff\xfe\xfd", b"\x00" * 10,
    b'"\\ud800"', b'{"_id": "x", "text": "\\udfff"}', b"NaN", b"{" * 100_001, b"\xef\xbb\xbf{}",
    b'{"messages": [{"role": ["user"], "content": "x"}]}', b'{"k": 1e999}', b"",
])


def raw_lines(extra: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """Lines of a JSONL file: JSON values, hostile text, classic breakers, raw bytes."""
    line = (json_value.map(lambda v: json.dumps(v).encode()) | hostile_text.map(
        lambda t: t.encode("utf-8", "surrogatepass")) | special_lines | st.binary(max_size=60)
            | (extra if extra is not None else st.nothing()))
    return st.lists(line, max_size=6).map(lambda lines: b"\n".join(lines))


def written(data: bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ragortune-fuzz-"))
    path = folder / name
    path.write_bytes(data)
    return path


@FUZZ
@given(data=st.binary(max_size=3000) | raw_lines() | hostile_text.map(
    lambda t: t.encode("utf-8", "surrogatepass")), suffix=st.sampled_from(sorted(SUFFIXES)))
def test_loaders_read_any_bytes_or_say_why_not(data, suffix):
    CASES["loaders"] += 1
    path = written(data, "doc" + suffix)
    try:
        docs = list(load_file(path))
    except ValueError:  # the documented reason a file is skipped
        return
    for doc in docs:
        assert doc.text.strip() or doc.title.strip()
        doc.text.encode("utf-8")  # storable


markup = st.lists(st.sampled_from([
    "# Title", "## Section", "Title\n=====", "-----", "Sub\n~~~", ".. image:: x.png",
    "   :target: y", "|badge|", "```", "", "\n\n", "word", "A sentence. Another one!",
    "x" * 3000, "data:image/png;base64," + "QUJD" * 600, "\u00a0\u2028\u3000", "\t"]), max_size=30)


@FUZZ
@given(parts=markup, text=hostile_text, fmt=st.sampled_from(["markdown", "text", "rst", "html",
                                                             "pdf", "jsonl"]),
       size=st.integers(min_value=-5, max_value=300), overlap=st.integers(min_value=-5, max_value=300))
def test_the_chunker_keeps_every_chunk_within_the_budget(embedder, parts, text, fmt, size, overlap):
    CASES["chunker"] += 1
    body = "\n".join(parts) + text
    assume(body.strip())
    body = body.encode("utf-8", "replace").decode("utf-8")  # loaders hand over valid text only
    doc = Document("k", "k", "k", "Title", body, fmt)
    try:
        chunks = chunk_document(doc, embedder.count_tokens, size=size, overlap=overlap)
    except RagortuneError:  # impossible sizes are a ConfigError
        assert size < 16 or overlap < 0 or overlap >= size
        return
    if chunks:
        assert max(embedder.count_tokens([c.embed_text for c in chunks])) <= size


ROLES = ["system", "user", "assistant", "tool", "developer", "Assistant", "", None, ["user"],
         {"r": 1}, 3]
message = st.fixed_dictionaries(
    {"role": st.sampled_from(ROLES)},
    optional={"content": json_value | hostile_text | st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "x"]), "text": json_leaf})),
        "weight": st.sampled_from([0, 1, 2, "heavy", float("nan"), True, None, 0.5]),
        "name": json_leaf, "tool_calls": json_value})
chat_line = st.fixed_dictionaries({"messages": st.lists(message, max_size=4)},
                                  optional={"tools": json_value, "extra": json_leaf})


def chat_bytes():
    return raw_lines(chat_line.map(lambda r: json.dumps(r, allow_nan=True).encode()))


@pytest.fixture(scope="module")
def tokenizers():
    from ragortune.tune.tokens import ChatTokenizer

    return [ChatTokenizer.for_model("gpt-4o-mini"), ChatTokenizer.for_model("smollm2")]


@FUZZ
@given(data=chat_bytes(), which=st.integers(min_value=0, max_value=1))
def test_the_chat_jsonl_validator_reports_problems_never_crashes(tokenizers, data, which):
    from ragortune.tune.validate import validate_file

    CASES["chat validator"] += 1
    report = validate_file(written(data, "train.jsonl"), tokenizers[which])
    assert report.lines >= 0
    for problem in report.problems:
        assert problem.severity in ("error", "warning") and problem.message


GOOD_CHAT = {"messages": [{"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello"}]}
BAD_CHAT_LINES = [
    b'{"messages": [{"role": ["user"], "content": "x"}, {"role": "assistant", "content": "y"}]}',
    b'{"messages": [{"role": {"a": 1}, "content": "x"}, {"role": "assistant", "content": "y"}]}',
    b'{"messages": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", '
    b'"weight": ' + b"7" * 5000 + b"}]}",
    b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", '
    b'"weight": "heavy"}]}',
    b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", '
    b'"weight": 2}]}',
    b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", '
    b'"weight": NaN}]}',
    b'{"messages": [{"role": "user", "content": "x \\ud800"}, {"role": "assistant", "content": "y"}]}',
    b'{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "y"}]}',
    b'{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}, '
    b'{"role": "assistant", "content": "y"}]}',
    b'{"messages": [{"role": "user", "content": {"text": "x"}}, {"role": "assistant", "content": "y"}]}',
    b'{"messages": [{"role": "user", "content": "x"}]}',
    b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", '
    b'"name": 5}]}',
]


@FUZZ
@given(good=st.integers(min_value=0, max_value=5), at=st.integers(min_value=0, max_value=5),
       bad=st.sampled_from(BAD_CHAT_LINES), which=st.integers(min_value=0, max_value=1))
def test_a_file_with_one_bad_line_is_never_ok(tokenizers, good, at, bad, which):
    from ragortune.tune.validate import validate_file

    CASES["chat validator, one bad line"] += 1
    lines = [json.dumps(GOOD_CHAT).encode()] * good
    at = min(at, good)
    lines.insert(at, bad)
    report = validate_file(written(b"\n".join(lines) + b"\n", "train.jsonl"), tokenizers[which])
    assert not report.ok
    assert at + 1 in {p.line for p in report.errors}


def test_content_given_as_text_parts_is_counted(tokenizers):
    from ragortune.tune.validate import validate_file

    long = "word " * 2000
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": long}]},
                          {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}]}
    plain = {"messages": [{"role": "user", "content": long}, {"role": "assistant", "content": "ok"}]}
    for tokenizer in tokenizers:
        a = validate_file(written(json.dumps(parts).encode(), "a.jsonl"), tokenizer)
        b = validate_file(written(json.dumps(plain).encode(), "b.jsonl"), tokenizer)
        assert a.ok and a.tokens.total == b.tokens.total > 2000


def test_a_1mb_message_is_a_too_long_warning_not_a_crash(tokenizers):
    from ragortune.tune.validate import validate_file

    huge = {"messages": [{"role": "user", "content": "lorem ipsum " * 90_000},
                         {"role": "assistant", "content": "ok"}]}
    report = validate_file(written(json.dumps(huge).encode(), "big.jsonl"), tokenizers[0])
    assert report.ok and [p.code for p in report.warnings] == ["too_long"]


@FUZZ
@given(data=raw_lines(st.fixed_dictionaries({}, optional={
    "_id": json_leaf, "id": json_leaf, "text": json_leaf | hostile_text, "question": json_leaf,
    "answers": json_value, "answer": json_leaf}).map(lambda r: json.dumps(r).encode())))
def test_the_question_reader_raises_only_input_errors(data):
    from ragortune.questions import read_questions

    CASES["question reader"] += 1
    try:
        questions = read_questions(written(data, "questions.jsonl"))
    except InputError:
        return
    assert questions and all(q.text.strip() for q in questions)


@FUZZ
@given(corpus=raw_lines(), queries=raw_lines(st.fixed_dictionaries(
    {"_id": st.sampled_from(["q1", "q2", 1]), "text": hostile_text}).map(
        lambda r: json.dumps(r).encode())),
       qrels=st.lists(st.text(max_size=20) | st.sampled_from(
           ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1 d1 1", "q2\td9\tx", "q1\td1\t1\t2"]),
           max_size=5).map(lambda rows: "\n".join(rows).encode("utf-8", "surrogatepass")))
def test_the_beir_reader_raises_only_input_errors(corpus, queries, qrels):
    from ragortune.evaluate.datasets import load_dataset

    CASES["BEIR reader"] += 1
    root = Path(tempfile.mkdtemp(prefix="ragortune-beir-"))
    (root / "qrels").mkdir()
    (root / "corpus.jsonl").write_bytes(corpus)
    (root / "queries.jsonl").write_bytes(queries)
    (root / "qrels" / "test.tsv").write_bytes(qrels)
    try:
        dataset = load_dataset(root)
        list(dataset.corpus())
    except InputError:
        return


toml_value = st.recursive(
    st.booleans() | st.integers(min_value=-10**30, max_value=10**30) | st.floats()
    | st.text(max_size=20), lambda inner: st.lists(inner, max_size=3), max_leaves=6)
SECTIONS = ["corpus", "traffic", "models", "finetune", "labour", "serving", "vector_store",
            "profile", "uncertainty", "expected", "name", "horizon_months", "bogus"]


@FUZZ
@given(data=st.dictionaries(st.sampled_from(SECTIONS), toml_value | st.dictionaries(
    st.text(max_size=12), toml_value, max_size=4), max_size=6), junk=st.binary(max_size=80))
def test_the_scenario_reader_raises_only_user_errors(data, junk):
    import tomllib

    from ragortune.cost.scenario import load_scenario, parse_scenario

    CASES["scenario reader"] += 1
    try:
        parse_scenario(data, "fuzz.toml")
    except RagortuneError:
        pass
    try:
        load_scenario(written(junk, "scenario.toml"))
    except RagortuneError:
        pass
    base = Path(__file__).parents[2] / "examples" / "scenarios" / "pre-revenue.toml"
    real = tomllib.loads(base.read_text())
    for section, value in data.items():  # a real scenario with one field broken
        real[section] = value
        try:
            parse_scenario(real, str(base))
        except RagortuneError:
            pass
