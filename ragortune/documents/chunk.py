"""Split documents into overlapping chunks sized in the embedder's own tokens.

Boundaries are preferred in this order: heading (Markdown, or reStructuredText in .rst and
.txt files), paragraph, sentence, word. A chunk never spans two sections, so its heading
path is exact, and starts or ends inside a word only when one word is longer than a chunk
(a base64 data URI, a minified blob): cut to the budget, it still fits the embedder's
window. Overlap repeats whole trailing sentences of the previous chunk.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragortune.documents.loaders import Document, is_rst_adornment, is_rst_underline
from ragortune.errors import ConfigError

TokenCounter = Callable[[Sequence[str]], list[int]]

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=\S)")
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# reStructuredText markup that is not content: badge images, substitution definitions and
# lines made only of substitution references (`|pypi| |build|`). Left in, badge URLs become
# chunks of their own that rank high for any query about the project.
RST_IMAGE = re.compile(r"^\.\.\s+(\|[^|]+\|\s+)?(image|figure)::", re.IGNORECASE)
RST_BADGE_LINE = re.compile(r"^\s*(\|[^|\s][^|]*\|_{0,2}\s*)+$")


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
    """(heading path, body) pairs; Markdown and HTML carry `#` headings, reStructuredText
    and plain text underlined ones."""
    if doc.format in ("rst", "text"):
        return _rst_sections(doc)
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


def _rst_sections(doc: Document) -> list[tuple[str, str]]:
    """Sections of reStructuredText: a heading's level is the order in which its adornment
    style (underline character, with or without overline) first appears, as in docutils.
    Plain text without such headings or badges is one section, as it was."""
    lines = doc.text.splitlines()
    styles: list[tuple[str, bool]] = []
    result: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    changed = False
    in_directive = False
    i = 0

    def flush() -> None:
        text = "\n".join(body).strip()
        if text:
            result.append((" > ".join(title for _, title in path), text))
        body.clear()

    while i < len(lines):
        line = lines[i]
        previous_blank = i == 0 or not lines[i - 1].strip()
        heading = None
        if (previous_blank and is_rst_adornment(line) and i + 2 < len(lines)
                and is_rst_underline(lines[i + 2], lines[i + 1].strip())
                and lines[i + 2].strip()[0] == line.strip()[0]):
            heading, style, i = lines[i + 1].strip(), (line.strip()[0], True), i + 3
        elif (previous_blank and i + 1 < len(lines) and line.strip()
              and is_rst_underline(lines[i + 1], line)):
            heading, style, i = line.strip(), (lines[i + 1].strip()[0], False), i + 2
        if heading is not None:
            flush()
            changed = True
            in_directive = False
            if style not in styles:
                styles.append(style)
            level = styles.index(style)
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, heading))
            continue
        i += 1
        if RST_IMAGE.match(line):
            in_directive = changed = True
            continue
        if in_directive and (line.startswith((" ", "\t")) and line.strip()):
            continue  # the directive's options (:target:, :alt:) and content
        in_directive = False
        if RST_BADGE_LINE.match(line):
            changed = True
            continue
        body.append(line)
    if not changed:
        return [("", doc.text)]
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
    """Cut a sentence longer than the budget at word boundaries (inside a word only when
    the word alone is over the budget)."""
    words = sentence.split(" ")
    lengths = count(words)
    if max(lengths, default=0) > budget:
        split = [_split_word(w, budget, count) if n > budget else [w]
                 for w, n in zip(words, lengths)]
        words = [piece for pieces in split for piece in pieces]
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


def _split_word(word: str, budget: int, count: TokenCounter) -> list[str]:
    """Pieces of an over-long word, each within `budget` tokens: cut by characters at the
    word's own characters-per-token rate, and a piece still over budget cut in half again.
    Linear in the word's length, so a multi-megabyte blob costs seconds, not hours."""
    pieces = [word]
    while True:
        lengths = count(pieces)
        if all(n <= budget or len(p) <= 1 for p, n in zip(pieces, lengths)):
            return pieces
        again: list[str] = []
        for piece, n in zip(pieces, lengths):
            if n <= budget or len(piece) <= 1:
                again.append(piece)
                continue
            width = max(1, min(len(piece) // 2, int(len(piece) * budget * 0.9 / n)))
            again.extend(piece[start:start + width] for start in range(0, len(piece), width))
        pieces = again


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
