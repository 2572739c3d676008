"""Turn files into `Document`s: Markdown, reStructuredText, text, HTML, PDF and JSONL (BEIR
corpus included).

A file that cannot be read is reported as a `Skipped` with its reason instead of
stopping the run: one bad PDF must not cost a user the rest of the corpus. The walk is
defensive because a docs folder is not always what it seems: symlinks leading out of it
(`notes.txt -> /etc/passwd`) are not followed, FIFOs and devices are never opened, sizes
are capped, and a folder that cannot be read is reported so its indexed documents are
kept rather than taken for deleted (`unreadable_roots`).
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ragortune.errors import InputError

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
            ".rst": "rst", ".html": "html", ".htm": "html", ".pdf": "pdf", ".jsonl": "jsonl"}

# Larger files are skipped with a reason: 8 MiB of text is ~2M tokens (minutes of embedding
# on a CPU); a bigger "document" is usually a log, a dump or minified data. PDFs carry images.
MAX_TEXT_BYTES = 8 * 2**20
MAX_PDF_BYTES = 128 * 2**20

# Reasons that say "could not look", not "is bad": documents indexed from there are kept.
_CANNOT_READ = "cannot read"
_MISSING = "no such file or folder"


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


def discover(paths: Iterable[str | Path],
             follow_outside_links: bool = False) -> tuple[list[Path], list[Skipped]]:
    """Files under the given paths (folders walked recursively, hidden entries ignored).

    Symlinks are followed only while they stay inside the folder given, unless
    `follow_outside_links`; anything that is not a regular file is skipped unopened."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            root = path.resolve()
            walk_errors: list[OSError] = []
            for folder, dirs, names in os.walk(path, onerror=walk_errors.append):
                for name in sorted(d for d in dirs if not d.startswith(".")):
                    if Path(folder, name).is_symlink():
                        skipped.append(Skipped(_shown(Path(folder, name)),
                                               "symlinked folder, not followed"))
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and not Path(folder, d).is_symlink())
                for name in sorted(names):
                    if not name.startswith("."):
                        _consider(Path(folder) / name, root, follow_outside_links, files, skipped)
            for error in walk_errors:
                where = Path(error.filename) if error.filename else path
                skipped.append(Skipped(_shown(where), f"{_CANNOT_READ} folder "
                                                     f"({error.strerror or error})"))
        elif path.exists() or path.is_symlink():
            _consider(path, None, follow_outside_links, files, skipped)
        else:
            skipped.append(Skipped(_shown(path), _MISSING))
    return files, skipped


def check_sources(paths: Iterable[str | Path]) -> None:
    """Refuse, before anything is written, a path that does not exist or paths holding no file
    ingest could read: an empty or unmounted folder would otherwise delete every document
    indexed from it (or create an empty KB on a typo)."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise InputError(f"{_shown(path)}: no such file or folder; check the path (and that "
                             "its drive is mounted)")
    files, _ = discover(paths)
    if not files:
        shown = ", ".join(_shown(p) for p in paths)
        raise InputError(f"nothing to ingest in {shown}: no {', '.join(sorted(SUFFIXES))} file "
                         "there (an empty folder is refused so that it never deletes what "
                         "was indexed from it)")


def unreadable_roots(skipped: Iterable[Skipped]) -> list[Path]:
    """Paths that could not be looked at this time (a folder without permission, a missing
    root: an unmounted drive looks the same): what was indexed from there must be kept."""
    return [Path(s.path) for s in skipped
            if s.reason.startswith(_CANNOT_READ) or s.reason == _MISSING]


def _shown(path: Path) -> str:
    """The path as text that can be printed and stored: bytes that are not UTF-8 are shown
    as \\xNN escapes instead of lone surrogates that crash any encoder downstream."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _consider(file: Path, root: Path | None, follow_outside_links: bool,
              files: list[Path], skipped: list[Skipped]) -> None:
    """Append `file` to `files`, or a reason to `skipped`."""
    shown = _shown(file)
    if shown != str(file):
        skipped.append(Skipped(shown, "file name is not valid UTF-8: rename it to index it"))
        return
    if file.suffix.lower() not in SUFFIXES:
        skipped.append(Skipped(shown, f"unsupported file type '{file.suffix}'"))
        return
    try:
        if file.is_symlink():
            target = file.resolve(strict=True)
            if root is not None and not target.is_relative_to(root) and not follow_outside_links:
                skipped.append(Skipped(shown, f"symlink to {target}, outside the folder: "
                                              "not followed"))
                return
        mode = file.stat().st_mode
    except FileNotFoundError as exc:
        reason = (f"broken symlink ({exc.strerror})" if file.is_symlink()
                  else f"removed while reading ({exc.strerror})")
        skipped.append(Skipped(shown, reason))
        return
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on Python < 3.13
        if isinstance(exc, OSError) and exc.errno != errno.ELOOP:
            skipped.append(Skipped(shown, f"{_CANNOT_READ} ({exc.strerror or exc})"))
        else:
            skipped.append(Skipped(shown, "symlink loop"))
        return
    if not stat.S_ISREG(mode):
        skipped.append(Skipped(shown, f"not a regular file ({_kind_of(mode)}): never opened"))
        return
    files.append(file)


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "special file"


def load_file(path: Path) -> list[Document]:
    """All documents of one file, or none: raises `ValueError` (or `OSError`) with a readable
    reason when it cannot be read, so a JSONL file broken at line 900 adds nothing rather
    than 899 lines."""
    kind = SUFFIXES[path.suffix.lower()]
    data = _read_capped(path, MAX_PDF_BYTES if kind == "pdf" else MAX_TEXT_BYTES)
    if not data.strip():
        raise ValueError("empty file")
    if kind == "pdf":
        return [_pdf(path, data)]
    text = _decode(data)
    if kind == "jsonl":
        return _guarded(lambda: list(_jsonl(path, text)))
    if kind == "html":
        return [_guarded(lambda: _html(path, text))]
    return [_checked(Document(str(path), str(path), str(path), _markdown_title(text, path), text,
                              kind))]


def _checked(doc: Document) -> Document:
    if not doc.text.strip():
        raise ValueError("no text content")
    return doc


def _markdown_title(text: str, path: Path) -> str:
    lines = text.splitlines()[:20]
    for line in lines:
        if line.startswith("# "):
            return line[2:].strip()
    for line, under in zip(lines, lines[1:]):  # reStructuredText: a title and its underline
        if is_rst_underline(under, line):
            return line.strip()
    return path.stem.replace("-", " ").replace("_", " ")


def is_rst_underline(line: str, title: str) -> bool:
    """`=====` (or -, ~, ^ ...) under a title at least as long: a reStructuredText heading."""
    mark = line.rstrip()
    return (len(mark) >= 3 and len(set(mark)) == 1 and mark[0] in RST_ADORNMENTS
            and bool(title.strip()) and not title.startswith(" ")
            and len(mark) >= len(title.rstrip()) and not is_rst_adornment(title))


RST_ADORNMENTS = "=-~^\"'`#*+:._<>"


def is_rst_adornment(line: str) -> bool:
    mark = line.rstrip()
    return len(mark) >= 3 and len(set(mark)) == 1 and mark[0] in RST_ADORNMENTS


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), or UTF-16/32 when a BOM says so; anything else is
    refused with the byte that fails, never guessed (a wrong guess indexes mojibake)."""
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise ValueError(f"not {codec.upper()} text as its BOM says (byte {exc.start})"
                                 ) from None
    if b"\x00" in data[:8192]:
        raise ValueError("binary content in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _read_capped(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing what is not a regular file (a FIFO would block forever,
    /dev/zero never ends) and anything over `limit`; checked on the open handle, so a file
    swapped for a FIFO after the walk is still caught."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("symlink loop") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"not a regular file ({_kind_of(mode)}): never opened")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit // 2**20} MiB: split it, or leave it out")
    return data


def _guarded(parse):
    """Run a parser whose input may be adversarial: nesting deep enough to exhaust the
    stack is a reason to skip the file, not a crash of the whole ingest."""
    try:
        return parse()
    except RecursionError:
        raise ValueError("nested too deep to parse") from None


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
        locked = reader.is_encrypted and not reader.decrypt("")  # an owner password is fine
        pages = [] if locked else [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata or {}).get("/Title") if pages and reader.metadata else None
    except Exception as exc:  # pypdf raises many types for corrupt files
        raise ValueError(f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from None
    if locked:
        raise ValueError("encrypted PDF that needs a password: save an unencrypted copy")
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
        except RecursionError:
            raise ValueError(f"line {number}: JSON nested too deep") from None
        except ValueError:  # json's limit on integer digits
            raise ValueError(f"line {number}: a number with too many digits") from None
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
