"""A hostile corpus: good documents mixed with the files that broke ingest on real folders.

`make_corpus(folder)` writes it and returns what an ingest must do with each entry: the
good files it must index, and the bad ones it must skip with a reason (a substring of the
reason is given). Shared by tests/robustness/test_hostile_corpus.py and bench/robustness.py.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

GOOD_TOPICS = [
    ("refunds", "Refunds are paid within 14 days of a written request."),
    ("on-call", "The on-call engineer answers pages within 15 minutes, day and night."),
    ("laptops", "Every employee receives a laptop that is replaced after four years."),
    ("travel", "Train travel is preferred over flights for trips under 500 kilometres."),
    ("security", "Passwords rotate every 90 days and need a second factor."),
    ("pricing", "The Team plan costs 99 euros a month for up to ten seats."),
]


@dataclass
class Corpus:
    root: Path
    good: dict[str, str] = field(default_factory=dict)  # relative path -> a phrase it holds
    bad: dict[str, str] = field(default_factory=dict)   # relative path (as reported) -> reason part
    unreadable: str | None = None                        # subfolder to chmod 000 for a re-sync
    unreadable_good: list[str] = field(default_factory=list)


def _pdf(path: Path, lines: list[str], password: str | None = None) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.multi_cell(w=pdf.epw, h=8, text=line, new_x="LMARGIN", new_y="NEXT")
    if password:
        pdf.set_encryption(owner_password=password, user_password=password)
    pdf.output(str(path))


def make_corpus(root: Path, seed: int = 16, big: bool = True) -> Corpus:
    """Write the corpus under `root` (created). `big=False` leaves out the 50 MB file and
    the 10 MB line, to keep a quick run quick."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(root)

    def good(rel: str, text: str | bytes, phrase: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        corpus.good[rel] = phrase

    def bad(rel: str, data: bytes | None, reason: str) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        corpus.bad[rel] = reason
        return path

    # Good documents, in every format, some with hostile-looking but legitimate content.
    for name, fact in GOOD_TOPICS:
        good(f"handbook/{name}.md", f"# {name.title()}\n\n{fact}\n\nMore detail follows.\n", fact)
    good("guide.txt", "Support is open from 9:00 to 17:00 CET on working days.\n", "9:00 to 17:00")
    good("readme.rst", "Widget\n======\n\n.. image:: https://img.shields.io/pypi/v/widget.svg\n"
         "   :target: https://pypi.org/project/widget\n\n|pypi| |build|\n\nInstall\n-------\n\n"
         "Widget installs with pip and needs Python 3.11.\n", "needs Python 3.11")
    good("page.html", "<html><head><title>Plans</title></head><body><h1>Plans</h1>"
         "<p>The Pro plan costs 49 euros a month.</p></body></html>", "49 euros a month")
    good("corpus.jsonl", '{"_id": "a1", "title": "Alpha", "text": "Alpha abstracts cite 12 trials."}\n'
         '{"_id": "a2", "title": "Beta", "text": "Beta abstracts cite 7 trials."}\n', "12 trials")
    b64 = base64.b64encode(rng.randbytes(3072)).decode()  # one 4 KB "word"
    good("badge-readme.md", f"# Badges\n\n[![cov](data:image/png;base64,{b64})](https://x)\n\n"
         "The badge readme says coverage is 97 percent.\n", "coverage is 97 percent")
    good("utf16-bom.txt", "The UTF-16 note says the vault code is 4711.\n".encode("utf-16"),
         "vault code is 4711")  # the BOM says how to read it
    good("name\nwith newline.md", "# Newline\n\nA file name with a line break indexes fine.\n",
         "line break indexes fine")
    good("caf\u00e9 notes.md", "# Cafe\n\nThe cafe opens at 7 in the morning.\n", "opens at 7")
    deep_ok = "<div>" * 200 + "<p>Moderately nested pages still index.</p>" + "</div>" * 200
    good("nested-ok.html", f"<html><body>{deep_ok}</body></html>", "Moderately nested")
    good("sub/inner.md", "# Inner\n\nThe inner folder holds the parking rules: 3 spaces.\n",
         "parking rules")
    good("secret/keep.md", "# Kept\n\nThe locked folder's note says the safe code is 2468.\n",
         "safe code is 2468")
    corpus.unreadable = "secret"
    corpus.unreadable_good = ["secret/keep.md"]
    (root / "inside-link.md").symlink_to(root / "handbook" / "refunds.md")
    corpus.good["inside-link.md"] = GOOD_TOPICS[0][1]

    # Bad files: each must be skipped with its reason, and cost nothing else.
    bad("empty.md", b"", "empty file")
    bad("blank.txt", b"  \n\n\t\n", "empty file")
    bad("binary.md", bytes(range(256)) * 8, "binary")
    bad("invalid-utf8.txt", b"valid start \xff\xfe\xfd then junk \xc3\x28", "not UTF-8")
    bad("utf16-no-bom.txt", "UTF-16 text without a BOM.\n".encode("utf-16-le"), "binary")
    bad("latin1.md", "# Caf\xe9\n\nCr\xe8me br\xfbl\xe9e.\n".encode("latin-1"), "not UTF-8")
    bad("corrupt.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage \x00\x01", "PDF")
    _pdf(root / "encrypted.pdf", ["The encrypted PDF hides its text."], password="s3cret")
    corpus.bad["encrypted.pdf"] = "PDF"
    _pdf(root / "image-only.pdf", [" "])
    corpus.bad["image-only.pdf"] = "PDF"
    if big:
        with open(root / "huge.txt", "wb") as handle:  # 50 MB of words
            line = b"lorem ipsum dolor sit amet consectetur adipiscing elit " * 18 + b"\n"
            for _ in range((50 * 10**6) // len(line) + 1):
                handle.write(line)
        corpus.bad["huge.txt"] = "larger than"
        bad("one-line.md", b"word " * (2 * 10**6), "larger than")  # a single 10 MB line
    bad("nested.jsonl", b'{"_id": "n", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        "nested too deep")
    bad("broken-lines.jsonl", b'{"_id": "ok1", "text": "First good line."}\n'
        b'{"_id": "ok2", "text": "Second good line."}\n{"_id": broken\n', "line 3")
    bad("not-object.jsonl", b'[1, 2, 3]\n', "line 1")
    bad("dup-ids.jsonl", b'{"_id": "x", "text": "one"}\n{"_id": "x", "text": "two"}\n', "duplicate")
    good("deep.html", "<html><body>" + "<div>" * 10_000 + "<p>The deepest div says 31 levels"
         " are plenty.</p>" + "</div>" * 10_000 + "</body></html>", "31 levels")
    bad("tags-only.html", b"<html><body><script>var x = 1;</script></body></html>", "no text")
    bad("fake.pdf", b"This is plain text pretending to be a PDF.\n", "PDF")
    bad("gzipped.md", bytes.fromhex("1f8b0800000000000003") + rng.randbytes(200), "")
    bad("picture.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(64), "unsupported")
    bad("archive.zip", b"PK\x03\x04" + rng.randbytes(64), "unsupported")
    # Links and special files
    (root / "loop-a.md").symlink_to(root / "loop-b.md")
    (root / "loop-b.md").symlink_to(root / "loop-a.md")
    corpus.bad["loop-a.md"] = "symlink loop"
    corpus.bad["loop-b.md"] = "symlink loop"
    (root / "dangling.md").symlink_to(root / "no-such-target.md")
    corpus.bad["dangling.md"] = "broken symlink"
    outside = root.parent / f"{root.name}-outside-secret.txt"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "passwd.txt").symlink_to(outside)
    corpus.bad["passwd.txt"] = "outside the folder"
    (root / "etc-passwd.txt").symlink_to("/etc/passwd")
    corpus.bad["etc-passwd.txt"] = "outside the folder"
    (root / "zero.md").symlink_to("/dev/zero")
    corpus.bad["zero.md"] = "outside the folder"
    os.mkfifo(root / "pipe.md")
    corpus.bad["pipe.md"] = "FIFO"
    (root / "linked-folder").symlink_to(root / "handbook", target_is_directory=True)
    corpus.bad["linked-folder"] = "symlinked folder"
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "socket.md"))
    corpus.bad["socket.md"] = "socket"
    weird = os.fsdecode(b"bad-\xff\xfe-name.md")
    (root / weird).write_text("# Weird\n\nA name that is not UTF-8.\n")
    corpus.bad["bad-\\xff\\xfe-name.md"] = "not valid UTF-8"
    # Hidden entries are ignored silently, by design (.git, .DS_Store).
    (root / ".hidden.md").write_text("# Hidden\n\nNever indexed.\n")
    return corpus


def remove_during_walk(root: Path) -> Path:
    """A file that discover() lists and load_file() then cannot find (it races the walk):
    created here, deleted by the caller between the two steps."""
    path = root / "vanishing.md"
    path.write_text("# Vanishing\n\nGone before it is read.\n")
    return path


def skipped_by_name(report: dict, root: Path) -> dict[str, str]:
    """`skipped_files` of an `ingest --json` report, keyed by path relative to `root`."""
    out = {}
    base = str(root.resolve()) + "/"
    for item in report["skipped_files"]:
        path = item["path"]
        out[path.removeprefix(base)] = item["reason"]
    return out


def indexed_sources(kb_path: Path) -> set[str]:
    manifest = json.loads((kb_path / "manifest.json").read_text())
    return {doc["source"] for doc in manifest["documents"].values()}


def ragortune_command(*args: str) -> list[str]:
    """The real CLI in a fresh interpreter, the way a user runs it."""
    return [sys.executable, "-c", "from ragortune.cli import main; main()", *args]


def run_measured(command: list[str], env: dict | None = None, user: int | None = None,
                 timeout: float = 1800) -> tuple[subprocess.CompletedProcess, int]:
    """Run `command` in a child and return it with the child's peak RSS in KiB, read from
    the kernel's rusage for that child alone (a wrapper process collects it)."""
    wrapper = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[1:])\n"
               "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
               " file=sys.stderr)\n"
               "sys.exit(r.returncode)\n")
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    kwargs = {"user": user, "group": user} if user is not None else {}
    result = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True,
                            text=True, env=full_env, timeout=timeout, **kwargs)
    peak = 0
    for line in result.stderr.splitlines():
        if line.startswith("PEAK_RSS_KIB "):
            peak = int(line.split()[1])
    return result, peak
