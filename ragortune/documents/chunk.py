"""Split documents into overlapping chunks sized in the embedder's own tokens.

Boundaries are preferred in this order: Markdown heading, paragraph, sentence, word.
A chunk never starts or ends inside a word, and never spans two sections, so its
heading path is exact. Overlap repeats whole trailing sentences of the previous chunk.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragortune.documents.loaders import Document
from ragortune.errors import ConfigError

TokenCounter = Callable[[Sequence[str]], list[int]]

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=\S)")
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    doc_key: str
    doc_id: str
    source: str
    title: str
    heading: str
    position: int
    text: str

    @property
    def embed_text(self) -> str:
        """What is embedded and full-text indexed: title and heading give the chunk its context."""
        context = chunk_context(self.title, self.heading)
        return f"{context}\n{self.text}" if context else self.text

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.embed_text.encode()).hexdigest()

    @property
    def chunk_id(self) -> str:
        key = hashlib.sha256(self.doc_key.encode()).hexdigest()[:16]
        return f"{key}-{self.position}-{self.content_hash[:16]}"


def chunk_context(title: str, heading: str) -> str:
    """`title > heading`, without repeating a title that is the heading path's first level."""
    if heading == title or heading.startswith(f"{title} > "):
        return heading
    return " > ".join(part for part in (title, heading) if part)


def check_sizes(size: int, overlap: int, window: int | None = None, embedder: str = "") -> None:
    """Refuse chunk sizes the chunker cannot honour, or that the embedder would truncate:
    a chunk longer than the embedder's `window` (in its tokens) loses its tail unseen."""
    if window is not None and size > window:
        raise ConfigError(
            f"chunk size {size} is larger than the {window}-token window of embedder "
            f"'{embedder}', which would silently cut every longer chunk: use --chunk-size "
            f"{window} or less, or an embedder with a longer window")
    if size < 16:
        raise ConfigError(f"chunk size {size} is too small: use at least 16 tokens")
    if overlap < 0 or overlap >= size:
        raise ConfigError(
            f"chunk overlap {overlap} must be at least 0 and smaller than the chunk size {size}"
        )


def sections(doc: Document) -> list[tuple[str, str]]:
    """(heading path, body) pairs; only Markdown and HTML carry headings."""
    if doc.format not in ("markdown", "html"):
        return [("", doc.text)]
    result: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    in_code = False

    def flush() -> None:
        text = "\n".join(body).strip()
        if text:
            result.append((" > ".join(title for _, title in path), text))
        body.clear()

    for line in doc.text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, match.group(2)))
        else:
            body.append(line)
    flush()
    return result


def _units(body: str) -> list[tuple[str, bool]]:
    """Sentences, each flagged when it ends a paragraph (a preferred place to cut)."""
    units: list[tuple[str, bool]] = []
    for paragraph in PARAGRAPH_BREAK.split(body):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        sentences = SENTENCE_END.split(paragraph)
        units.extend((s, i == len(sentences) - 1) for i, s in enumerate(sentences))
    return units


def _split_long(sentence: str, budget: int, count: TokenCounter) -> list[str]:
    """Cut a sentence longer than the budget at word boundaries."""
    words = sentence.split(" ")
    lengths = count(words)
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for word, length in zip(words, lengths):
        if current and used + length > budget:
            pieces.append(" ".join(current))
            current, used = [], 0
        current.append(word)
        used += length
    if current:
        pieces.append(" ".join(current))
    return pieces


def chunk_document(doc: Document, count: TokenCounter, size: int = 240, overlap: int = 30) -> list[Chunk]:
    """Chunks of at most `size` tokens (title and heading included) with `overlap` tokens shared."""
    check_sizes(size, overlap)
    chunks: list[Chunk] = []
    for heading, body in sections(doc):
        context = chunk_context(doc.title, heading)
        units = _units(body)
        lengths = count([context] + [text for text, _ in units])  # one tokenizer call
        context_tokens = lengths.pop(0)
        budget = max(size - (context_tokens + 1 if context else 0), size // 2)
        pieces: list[tuple[str, int, bool]] = []
        for (text, ends_paragraph), length in zip(units, lengths):
            if length > budget:
                split = _split_long(text, budget, count)
                pieces.extend((t, n, False) for t, n in zip(split, count(split)))
                pieces[-1] = (*pieces[-1][:2], ends_paragraph)
            else:
                pieces.append((text, length, ends_paragraph))
        for text in _pack(pieces, budget, min(overlap, budget - 1)):
            chunks.append(Chunk(doc.key, doc.doc_id, doc.source, doc.title, heading,
                                len(chunks), text))
    return chunks


def _pack(pieces: list[tuple[str, int, bool]], budget: int, overlap: int) -> list[str]:
    """Windows of whole sentences within `budget` tokens. A window that must be cut ends
    at a paragraph end when one lies in its second half; the next window restarts with
    trailing sentences of the previous one worth at most `overlap` tokens."""
    windows: list[str] = []
    start = 0
    while start < len(pieces):
        end, used = start, 0
        while end < len(pieces) and (end == start or used + pieces[end][1] <= budget):
            used += pieces[end][1]
            end += 1
        if end < len(pieces):
            cumulative = 0
            for j in range(start, end - 1):
                cumulative += pieces[j][1]
                if pieces[j][2] and cumulative >= budget // 2:
                    end = j + 1
        windows.append(" ".join(text for text, _, _ in pieces[start:end]))
        if end >= len(pieces):
            break
        back, carried = end, 0
        while (back - 1 > start and carried + pieces[back - 1][1] <= overlap
               and carried + pieces[back - 1][1] + pieces[end][1] <= budget):
            back -= 1
            carried += pieces[back][1]
        start = back
    return windows
