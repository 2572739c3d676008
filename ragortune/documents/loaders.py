"""Turn files into `Document`s: Markdown, text, HTML, PDF and JSONL (BEIR corpus included).

A file that cannot be read is reported as a `Skipped` with its reason instead of
stopping the run: one bad PDF must not cost a user the rest of the corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
            ".html": "html", ".htm": "html", ".pdf": "pdf", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class Document:
    """One document. `key` is unique within a KB (the path, or `path#id` for a JSONL line);
    `doc_id` is what evaluation data calls it (the path, or the line's own `_id`)."""

    key: str
    doc_id: str
    source: str
    title: str
    text: str
    format: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.text}".encode()).hexdigest()


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[Skipped]]:
    """Files under the given paths (folders walked recursively, hidden entries ignored)."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    file = Path(root) / name
                    if file.suffix.lower() in SUFFIXES:
                        files.append(file)
                    else:
                        skipped.append(Skipped(str(file), f"unsupported file type '{file.suffix}'"))
        elif path.is_file():
            if path.suffix.lower() in SUFFIXES:
                files.append(path)
            else:
                skipped.append(Skipped(str(path), f"unsupported file type '{path.suffix}'"))
        else:
            skipped.append(Skipped(str(path), "no such file or folder"))
    return files, skipped


def load_file(path: Path) -> list[Document]:
    """All documents of one file, or none: raises `ValueError` with a readable reason when it
    cannot be read, so a JSONL file broken at line 900 adds nothing rather than 899 lines."""
    kind = SUFFIXES[path.suffix.lower()]
    data = path.read_bytes()
    if not data.strip():
        raise ValueError("empty file")
    if kind == "pdf":
        return [_pdf(path, data)]
    if b"\x00" in data[:8192]:
        raise ValueError("binary content in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    if kind == "jsonl":
        return list(_jsonl(path, text))
    if kind == "html":
        return [_html(path, text)]
    return [_checked(Document(str(path), str(path), str(path), _markdown_title(text, path), text,
                              kind))]


def _checked(doc: Document) -> Document:
    if not doc.text.strip():
        raise ValueError("no text content")
    return doc


def _markdown_title(text: str, path: Path) -> str:
    for line in text.splitlines()[:20]:
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").replace("_", " ")


def _html(path: Path, text: str) -> Document:
    """Visible text only; headings become Markdown headings so the chunker keeps their path."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head", "nav", "svg"]):
        if tag.name == "head":
            continue
        tag.decompose()
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    body = soup.body or soup
    blocks: list[str] = []
    for element in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre",
                                  "td", "th", "dt", "dd", "blockquote"]):
        if element.find_parent(["p", "li", "td", "th", "dd", "blockquote", "pre"]):
            continue  # nested: its text is already part of the enclosing block
        content = element.get_text(" ", strip=True)
        if not content:
            continue
        if element.name[0] == "h" and element.name[1:].isdigit():
            blocks.append("#" * int(element.name[1]) + " " + content)
        else:
            blocks.append(content)
    if not blocks:  # pages without block tags: fall back to all visible text
        blocks = [body.get_text("\n", strip=True)]
    if not title:
        title = next((b.lstrip("# ") for b in blocks if b.startswith("#")), path.stem)
    return _checked(Document(str(path), str(path), str(path), title, "\n\n".join(blocks), "html"))


def _pdf(path: Path, data: bytes) -> Document:
    import io
    import logging

    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata or {}).get("/Title") if reader.metadata else None
    except Exception as exc:  # pypdf raises many types for corrupt files
        raise ValueError(f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise ValueError("PDF has no extractable text (scanned image?)")
    title = str(meta_title).strip() if meta_title else text.strip().splitlines()[0][:120]
    return Document(str(path), str(path), str(path), title, text, "pdf")


def _jsonl(path: Path, text: str) -> Iterator[Document]:
    """One document per line; BEIR's `_id`/`title`/`text` accepted as is."""
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {number}: expected a JSON object")
        doc_id = row.get("_id", row.get("id"))
        body = row.get("text", row.get("content"))
        if doc_id is None or not isinstance(body, str):
            raise ValueError(f"line {number}: needs fields '_id' (or 'id') and 'text'")
        doc_id = str(doc_id)
        if doc_id in seen:
            raise ValueError(f"line {number}: duplicate id '{doc_id}'")
        seen.add(doc_id)
        title = str(row.get("title") or "")
        if not body.strip() and not title.strip():
            continue
        yield Document(f"{path}#{doc_id}", doc_id, str(path), title, body, "jsonl")
