import json

import pytest

from ragortune.errors import InputError
from ragortune.io import read_jsonl, write_json_atomic


def test_jsonl_with_a_byte_order_mark_reads_like_plain_utf8(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"text": "a"}\n\n{"text": "b"}\n')
    assert list(read_jsonl(path)) == [(1, {"text": "a"}), (3, {"text": "b"})]


def test_a_bad_byte_or_bad_json_names_its_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": "\xff"}\n')
    with pytest.raises(InputError, match=r"q.jsonl:2: not UTF-8"):
        list(read_jsonl(path))
    path.write_text('{"text": "a"}\n{"text": \n')
    with pytest.raises(InputError, match=r"q.jsonl:2: not valid JSON"):
        list(read_jsonl(path))


def test_an_atomic_write_leaves_no_temporary_file(tmp_path):
    write_json_atomic(tmp_path / "out.json", {"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": 1}
