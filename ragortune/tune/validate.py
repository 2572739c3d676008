"""Check a chat fine-tuning JSONL file before anyone pays for a job: every problem, with its line.

Unlike the rest of the tool, validation does not stop at the first mistake: it reads the whole
file and returns all problems, then the statistics and the bill for the examples that are fine.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragortune.errors import InputError
from ragortune.tune.estimate import TrainingEstimate, estimate_training
from ragortune.tune.tokens import ChatTokenizer, message_text

EXAMPLE_KEYS = {"messages", "tools", "functions", "parallel_tool_calls"}
MESSAGE_KEYS = {"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id", "refusal"}
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one line; errors make a provider reject the file, warnings do not."""

    line: int
    code: str
    severity: str
    message: str


@dataclass(frozen=True)
class TokenStats:
    examples: int
    total: int
    min: int
    mean: float
    median: float
    p90: int
    max: int
    assistant_total: int
    assistant_mean: float


@dataclass(frozen=True)
class ValidationReport:
    path: str
    model: str
    max_tokens: int
    lines: int
    examples: int  # examples without errors: what would be trained on
    problems: list[Problem] = field(default_factory=list)
    truncated: int = 0
    tokens: TokenStats | None = None
    estimate: TrainingEstimate | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_example(record: Any, line: int) -> list[Problem]:
    """Structural problems of one parsed line (no tokens involved)."""

    def err(code: str, message: str) -> Problem:
        return Problem(line, code, ERROR, message)

    if not isinstance(record, dict):
        return [err("not_object", f"expected a JSON object, got {type(record).__name__}")]
    problems = [
        err("unknown_key", f"unknown key {key!r}; allowed: {', '.join(sorted(EXAMPLE_KEYS))}")
        for key in record
        if key not in EXAMPLE_KEYS
    ]
    messages = record.get("messages")
    if messages is None:
        return problems + [err("missing_messages", 'no "messages" list: add {"messages": [...]}')]
    if not isinstance(messages, list):
        return problems + [err("missing_messages", '"messages" must be a list of {role, content}')]
    if not messages:
        return problems + [err("empty_example", '"messages" is empty: add a user and an assistant turn')]
    has_assistant = False
    for i, message in enumerate(messages, start=1):
        where = f"message {i}"
        if not isinstance(message, dict):
            problems.append(err("not_object", f"{where} is not an object with role and content"))
            continue
        for key in message:
            if key not in MESSAGE_KEYS:
                problems.append(
                    err("unknown_key", f"{where}: unknown key {key!r}; use role, content, name, weight")
                )
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            what = "has no role" if role is None else f"has unknown role {_short(role)}"
            problems.append(err("unknown_role", f"{where} {what}; use system, user or assistant"))
            role = None
        content = message.get("content")
        calls = role == "assistant" and (message.get("tool_calls") or message.get("function_call"))
        problems.extend(err(code, f"{where}: {text}") for code, text in _content_problems(content))
        if not message_text(content).strip() and not calls:
            problems.append(err("missing_content", f"{where} ({role}) has no text in \"content\""))
        problems.extend(err(code, f"{where}: {text}") for code, text in _field_problems(message, role))
        if role == "assistant":
            has_assistant = True
    if not has_assistant:
        problems.append(err("no_assistant", "no assistant message: nothing to train on"))
    return problems


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad_unicode(text: str) -> bool:
    """A lone surrogate (`"\\ud800"` in the JSON) is valid JSON but not text: tokenizers
    and providers reject it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _content_problems(content: Any) -> list[tuple[str, str]]:
    """`content`: a string, null (assistant tool calls), or a list of parts, each
    `{"type": "text", "text": "..."}` (or an image part, which costs no text tokens)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [("invalid_text", '"content" holds a lone surrogate (invalid Unicode): fix '
                                 "the text's encoding")] if _bad_unicode(content) else []
    if not isinstance(content, list):
        return [("bad_content", f'"content" is a {type(content).__name__}: use a string or a '
                                'list of {"type": "text", "text": ...} parts')]
    problems = []
    for i, part in enumerate(content, start=1):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if _bad_unicode(part["text"]):
                problems.append(("invalid_text", f"content part {i} holds a lone surrogate "
                                                 "(invalid Unicode)"))
        elif kind != "image_url":
            problems.append(("bad_content", f"content part {i} is not a "
                                            '{"type": "text", "text": "..."} part'))
    return problems


def _field_problems(message: dict[str, Any], role: str | None) -> list[tuple[str, str]]:
    """Types of the optional fields a provider checks (`weight` 0 or 1 on assistant turns)."""
    problems = []
    if "weight" in message:
        weight = message["weight"]
        if isinstance(weight, bool) or weight not in (0, 1):
            problems.append(("bad_weight", f'"weight" is {_short(weight)}: use 0 or 1'))
        elif role != "assistant":
            problems.append(("bad_weight", '"weight" is only allowed on assistant messages'))
    name = message.get("name")
    if name is not None and (not isinstance(name, str) or _bad_unicode(name)):
        problems.append(("bad_name", f'"name" is {_short(name)}: use a string'))
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        problems.append(("bad_tool_calls", '"tool_calls" must be a list'))
    return problems


def _parse(raw: bytes) -> tuple[Any, str | None]:
    """(record, None), or (None, why the line is not a JSON value we can read)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start}): save the file as UTF-8"
    try:
        return json.loads(text.rstrip("\r\n")), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "not valid JSON (nested too deep)"
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return None, f"not valid JSON ({str(exc).splitlines()[0][:120]})"


def validate_file(
    path: str | Path,
    tokenizer: ChatTokenizer,
    *,
    epochs: int | None = None,
    price_per_million: float | None = None,
    price_source: str | None = None,
) -> ValidationReport:
    """Read the whole file; report every problem by line, then token statistics and the bill
    (`epochs` None = the provider's default rule) for the examples without errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the chat JSONL to check")
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    totals: list[int] = []
    assistant: list[int] = []
    truncated = 0
    n_lines = 0
    blank: list[int] = []
    last_filled = 0
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            n_lines = line_no
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                blank.append(line_no)
                continue
            last_filled = line_no
            record, why = _parse(raw)
            if why is not None:
                code = "not_utf8" if why.startswith("not UTF-8") else "not_json"
                problems.append(Problem(line_no, code, ERROR, why))
                continue
            found = check_example(record, line_no)
            problems.extend(found)
            if any(p.severity == ERROR for p in found):
                continue
            key = json.dumps(record["messages"], sort_keys=True, ensure_ascii=False)
            if key in seen:
                problems.append(
                    Problem(line_no, "duplicate", WARNING, f"same example as line {seen[key]}: delete one")
                )
            else:
                seen[key] = line_no
            n_tokens, n_assistant = tokenizer.count(record["messages"])
            if n_tokens > tokenizer.max_tokens:
                truncated += 1
                problems.append(
                    Problem(
                        line_no,
                        "too_long",
                        WARNING,
                        f"{n_tokens} tokens, over the {tokenizer.max_tokens}-token limit of "
                        f"{tokenizer.model}: it will be truncated; shorten or split it",
                    )
                )
            totals.append(n_tokens)
            assistant.append(n_assistant)
    for line_no in blank:  # blank lines at the very end are harmless, elsewhere they break the file
        trailing = line_no > last_filled
        problems.append(
            Problem(line_no, "blank_line", WARNING if trailing else ERROR, "blank line: delete it")
        )
    if last_filled == 0:
        problems.append(Problem(0, "empty_file", ERROR, "the file has no examples"))
    problems.sort(key=lambda p: p.line)
    stats = None
    estimate = None
    if totals:
        ordered = sorted(totals)
        stats = TokenStats(
            examples=len(totals),
            total=sum(totals),
            min=ordered[0],
            mean=round(statistics.fmean(totals), 1),
            median=statistics.median(totals),
            p90=ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            max=ordered[-1],
            assistant_total=sum(assistant),
            assistant_mean=round(statistics.fmean(assistant), 1),
        )
        estimate = estimate_training(
            totals,
            model=tokenizer.model,
            max_tokens=tokenizer.max_tokens,
            epochs=epochs,
            price_per_million=price_per_million,
            price_source=price_source,
        )
    return ValidationReport(
        path=str(path),
        model=tokenizer.model,
        max_tokens=tokenizer.max_tokens,
        lines=n_lines,
        examples=len(totals),
        problems=problems,
        truncated=truncated,
        tokens=stats,
        estimate=estimate,
    )
