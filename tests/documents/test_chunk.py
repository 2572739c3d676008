import re
import subprocess
import sys

import pytest

from ragortune.documents.chunk import chunk_document, sections
from ragortune.documents.loaders import Document
from ragortune.errors import ConfigError
from ragortune.kb import open_kb


def doc(text: str, fmt: str = "markdown", title: str = "Guide") -> Document:
    return Document("guide.md", "guide.md", "guide.md", title, text, fmt)


def sentences(n: int, prefix: str = "Sentence") -> str:
    return " ".join(f"{prefix} number {i} talks about refunds and invoices." for i in range(n))


def test_chunks_respect_the_token_budget_including_title_and_heading(embedder):
    text = "# Guide\n\n## Billing\n\n" + sentences(80)
    chunks = chunk_document(doc(text), embedder.count_tokens, size=64, overlap=8)
    assert len(chunks) > 5
    lengths = embedder.count_tokens([c.embed_text for c in chunks])
    assert max(lengths) <= 64


def test_no_word_is_cut_and_every_sentence_is_kept(embedder):
    body = sentences(40)
    chunks = chunk_document(doc(body, fmt="text"), embedder.count_tokens, size=48, overlap=0)
    words = set(body.split())
    for chunk in chunks:
        assert set(chunk.text.split()) <= words
    # with no overlap, the chunks concatenate back to the text
    assert " ".join(c.text for c in chunks) == body


def test_overlap_repeats_whole_trailing_sentences(embedder):
    body = sentences(40)
    chunks = chunk_document(doc(body, fmt="text"), embedder.count_tokens, size=60, overlap=20)
    for before, after in zip(chunks, chunks[1:]):
        first_sentence = re.split(r"(?<=\.)\s", after.text)[0]
        assert first_sentence in before.text  # the next chunk starts with a repeated sentence
        assert after.text != before.text


def test_markdown_sections_give_heading_paths_and_never_share_a_chunk(embedder):
    text = ("# Handbook\n\nIntro text here.\n\n## Leave\n\nEmployees get 25 days.\n\n"
            "### Carry-over\n\nFive days carry over.\n\n## Travel\n\nBook via the portal.\n"
            "```\n# not a heading inside code\n```\n")
    chunks = chunk_document(doc(text, title="Handbook"), embedder.count_tokens, size=200, overlap=20)
    assert [(c.heading, c.text.split()[0]) for c in chunks] == [
        ("Handbook", "Intro"), ("Handbook > Leave", "Employees"),
        ("Handbook > Leave > Carry-over", "Five"), ("Handbook > Travel", "Book")]
    assert "# not a heading inside code" in chunks[-1].text
    assert chunks[1].embed_text.startswith("Handbook > Leave\n")


def test_paragraph_end_is_preferred_over_a_mid_paragraph_cut(embedder):
    first = sentences(6, "Alpha")
    second = sentences(6, "Beta")
    chunks = chunk_document(doc(first + "\n\n" + second, fmt="text"), embedder.count_tokens,
                            size=100, overlap=0)
    assert len(chunks) == 2
    assert chunks[0].text == first


def test_a_sentence_longer_than_the_chunk_is_cut_at_word_boundaries(embedder):
    long_sentence = " ".join(f"word{i}" for i in range(400)) + "."
    chunks = chunk_document(doc(long_sentence, fmt="text", title=""), embedder.count_tokens,
                            size=50, overlap=0)
    assert len(chunks) > 5
    assert " ".join(c.text for c in chunks) == long_sentence
    assert max(embedder.count_tokens([c.text for c in chunks])) <= 50


@pytest.mark.parametrize("size, overlap", [(100, 100), (100, 150), (100, -1), (8, 0)])
def test_impossible_sizes_are_a_clear_error(embedder, size, overlap):
    with pytest.raises(ConfigError, match="chunk"):
        chunk_document(doc("text"), embedder.count_tokens, size=size, overlap=overlap)


def test_plain_text_has_no_heading_sections():
    assert sections(doc("# looks like a heading\nbody", fmt="text")) == [
        ("", "# looks like a heading\nbody")]


def test_chunk_ids_are_stable_and_depend_on_text(embedder):
    a = chunk_document(doc(sentences(10), fmt="text"), embedder.count_tokens, size=60, overlap=10)
    b = chunk_document(doc(sentences(10), fmt="text"), embedder.count_tokens, size=60, overlap=10)
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert len({c.chunk_id for c in a}) == len(a)


def test_a_chunk_size_beyond_the_embedders_window_is_refused_on_the_cli(tmp_path, embedder):
    """MiniLM reads 254 tokens of text: a 1000-token chunk would be embedded by its first quarter."""
    (tmp_path / "a.md").write_text("# A\n\nSome text.\n")
    done = subprocess.run(
        [sys.executable, "-c", "from ragortune.cli import main; main()", "ingest",
         str(tmp_path / "a.md"), "--kb", str(tmp_path / "kb"), "--chunk-size", "1000"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"error: chunk size 1000 is larger than the {embedder.max_tokens}-token window of "
        "embedder 'minilm'")
    assert f"use --chunk-size {embedder.max_tokens} or less" in done.stderr
    assert not (tmp_path / "kb").exists()  # nothing half-made
    window = embedder.max_tokens
    with pytest.raises(ConfigError, match=f"{window}-token window"):
        open_kb(tmp_path / "kb", embedder=embedder, create=True, chunk_size=window + 1)
    assert open_kb(tmp_path / "kb", embedder=embedder, create=True,
                   chunk_size=window).settings.chunk_size == window
