"""Files and time, done one way everywhere: atomic writes, JSONL with file:line errors, UTC now."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragortune.errors import InputError


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write to a temporary file beside `path`, fsync, then rename over it: a reader (or a
    crash) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, payload: Any, indent: int | None = 1) -> Path:
    return write_atomic(path, json.dumps(payload, indent=indent, default=str) + "\n")


def write_jsonl_atomic(path: str | Path, rows: Any) -> Path:
    return write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_json(path: str | Path, fix: str) -> Any:
    """A JSON file's value; a broken one is an InputError naming the file, line and `fix`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); {fix}") from None


def read_jsonl(path: str | Path, what: str = "file") -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; a bad line is an InputError
    naming the file and line. `what` names the file's role in the message ("questions file")."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} not found")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read ({exc.strerror})") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{path}:{number}: not UTF-8 text; save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except (ValueError, RecursionError) as exc:  # ValueError: a 5,000-digit number
                reason = (exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
                          if isinstance(exc, RecursionError) else "a number with too many digits")
                raise InputError(f"{path}:{number}: not valid JSON ({reason})") from None


def utc_now() -> str:
    """An ISO-8601 UTC timestamp to the second, the format every file we write uses."""
    return datetime.now(UTC).isoformat(timespec="seconds")
