"""Issue 16's failures in reading documents, one test each, through the real sync and the
shipped embedder: each failed before the fix (a traceback, a hang, a leak or a deletion)."""

from __future__ import annotations

import base64
import os
import random
from pathlib import Path

import pytest

from ragortune.documents.chunk import chunk_document, sections
from ragortune.documents.loaders import Document, load_file
from ragortune.kb import open_kb
from ragortune.kb import sync as sync_module
from ragortune.kb.sync import sync
from ragortune.retrieve import search

GOOD = "# Leave\n\nEmployees get 25 days of paid leave per year.\n"


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "leave.md").write_text(GOOD)
    return folder


@pytest.fixture
def kb(tmp_path, embedder):
    return open_kb(tmp_path / "kb", embedder=embedder, create=True)


def reasons(report) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in report.skipped}


def sources(kb) -> set[str]:
    return {Path(d["source"]).name for d in kb.load_manifest().documents.values()}


def test_a_4kb_base64_word_is_split_to_the_window_instead_of_crashing_the_ingest(docs, kb):
    blob = base64.b64encode(random.Random(1).randbytes(3072)).decode()
    (docs / "README.md").write_text(f"# Tool\n\n![badge](data:image/png;base64,{blob})\n\n"
                                    "The tool needs Python 3.11.\n")
    report = sync(kb, [docs])
    assert report.skipped == [] and report.added == 2
    from ragortune.documents.chunk import chunk_context

    texts = [f"{chunk_context(c.title, c.heading)}\n{c.text}" for c in kb.chunks()]
    assert max(kb.embedder.count_tokens(texts)) <= kb.embedder.max_tokens
    assert "".join(c.text.replace(" ", "") for c in kb.chunks()).count(blob[:500]) == 1


def test_a_word_longer_than_the_chunk_is_cut_within_the_budget(embedder):
    word = base64.b64encode(random.Random(2).randbytes(6000)).decode()
    doc = Document("r.md", "r.md", "r.md", "Readme", f"Before {word} after.", "text")
    chunks = chunk_document(doc, embedder.count_tokens, size=64, overlap=8)
    assert max(embedder.count_tokens([c.embed_text for c in chunks])) <= 64
    assert "".join(c.text.replace(" ", "") for c in chunks).count(word[:1000]) == 1


def test_a_jsonl_file_with_a_bad_line_3_indexes_none_of_its_lines(docs, kb):
    (docs / "corpus.jsonl").write_text('{"_id": "a", "text": "Alpha line."}\n'
                                       '{"_id": "b", "text": "Beta line."}\n{"_id": oops\n')
    report = sync(kb, [docs])
    assert "line 3" in reasons(report)["corpus.jsonl"]
    assert sources(kb) == {"leave.md"}
    assert not any(c.source.endswith("corpus.jsonl") for c in kb.chunks())


def test_a_jsonl_line_nested_100k_deep_is_a_reason_not_a_recursion_error(docs, kb):
    (docs / "deep.jsonl").write_bytes(b'{"_id": "d", "text": ' + b"[" * 100_000 + b"]" * 100_000
                                      + b"}\n")
    report = sync(kb, [docs])
    assert "nested too deep" in reasons(report)["deep.jsonl"]
    assert sources(kb) == {"leave.md"}


def test_a_file_name_with_non_utf8_bytes_is_reported_and_the_rest_committed(docs, kb):
    (docs / os.fsdecode(b"notes-\xff.md")).write_text("# Notes\n\nSome notes.\n")
    report = sync(kb, [docs])
    assert reasons(report) == {"notes-\\xff.md": "file name is not valid UTF-8: rename it to index it"}
    assert sources(kb) == {"leave.md"}
    report.to_json()["skipped_files"][0]["path"].encode("utf-8")  # printable, storable


def test_a_fifo_is_never_opened_so_the_ingest_does_not_block(docs, kb):
    os.mkfifo(docs / "pipe.md")
    report = sync(kb, [docs])
    assert "FIFO" in reasons(report)["pipe.md"]
    assert sources(kb) == {"leave.md"}


def test_a_symlink_to_dev_zero_is_not_read(docs, kb):
    (docs / "zero.md").symlink_to("/dev/zero")
    report = sync(kb, [docs])
    assert "not followed" in reasons(report)["zero.md"]


def test_a_symlink_out_of_the_folder_is_not_followed_so_its_text_is_never_served(docs, kb,
                                                                                  tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (docs / "notes.txt").symlink_to(secret)
    report = sync(kb, [docs])
    assert "outside the folder" in reasons(report)["notes.txt"]
    hits = search(kb, "root bin bash", k=5, mode="bm25")
    assert not any("root:x" in hit.text for hit in hits)


def test_a_file_removed_during_the_walk_is_skipped_and_the_rest_committed(docs, kb, monkeypatch):
    (docs / "vanishing.md").write_text("# Gone\n\nSoon gone.\n")
    real = sync_module.discover

    def racing_discover(paths):
        found = real(paths)
        (docs / "vanishing.md").unlink()  # removed between the walk and the read
        return found

    monkeypatch.setattr(sync_module, "discover", racing_discover)
    report = sync(kb, [docs])
    assert "No such file" in reasons(report)["vanishing.md"]
    assert sources(kb) == {"leave.md"}


def test_a_missing_root_deletes_nothing_it_indexed(docs, kb, tmp_path):
    """An unmounted drive looks like a missing folder: its documents must stay."""
    sync(kb, [docs])
    docs.rename(tmp_path / "elsewhere")
    report = sync(kb, [docs])
    assert report.deleted == 0 and sources(kb) == {"leave.md"}
    assert reasons(report) == {"docs": "no such file or folder"}


def test_a_subfolder_the_walk_cannot_enter_keeps_its_documents(docs, kb, monkeypatch):
    """The walk's error for a folder it cannot list (EACCES as an ordinary user; the
    through-the-CLI test with chmod 000 is in test_hostile_corpus.py)."""
    (docs / "sub").mkdir()
    (docs / "sub" / "inner.md").write_text("# Inner\n\nParking has 3 spaces.\n")
    sync(kb, [docs])
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("/sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = sync(kb, [docs])
    assert report.deleted == 0 and report.chunks_deleted == 0
    assert sources(kb) == {"leave.md", "inner.md"}
    assert reasons(report)["sub"].startswith("cannot read folder")


def test_rst_files_are_read_with_their_headings_and_without_badges(tmp_path, embedder):
    path = tmp_path / "README.rst"
    path.write_text("=======\nWidget\n=======\n\n.. image:: https://img.shields.io/pypi/v/w.svg\n"
                    "   :target: https://pypi.org/project/w\n\n|pypi| |build|\n\n"
                    "Install\n-------\n\nUse pip.\n\nFrom source\n~~~~~~~~~~~\n\nClone it.\n\n"
                    "Usage\n-----\n\nCall widget().\n")
    [doc] = load_file(path)
    assert (doc.format, doc.title) == ("rst", "Widget")
    assert sections(doc) == [("Widget > Install", "Use pip."),
                             ("Widget > Install > From source", "Clone it."),
                             ("Widget > Usage", "Call widget().")]
    text = " ".join(c.embed_text for c in chunk_document(doc, embedder.count_tokens))
    assert "shields.io" not in text and "|pypi|" not in text


def test_rst_headings_in_a_txt_file_are_recognised(tmp_path):
    path = tmp_path / "README.txt"
    path.write_text("Widget\n======\n\nIntro.\n\nInstall\n-------\n\nUse pip.\n")
    [doc] = load_file(path)
    assert doc.title == "Widget"
    assert sections(doc) == [("Widget", "Intro."), ("Widget > Install", "Use pip.")]
