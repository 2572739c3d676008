import re

import pytest

from ragortune.documents.chunk import chunk_document, sections
from ragortune.documents.loaders import Document
from ragortune.errors import ConfigError


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
