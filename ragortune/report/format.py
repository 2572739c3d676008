"""How numbers read in both reports (HTML and Markdown), so the two never disagree."""

from __future__ import annotations

from ragortune.report.model import Measure, PairedTest, SensitivityRow

NOT_MEASURED = "not measured"
SUBSET_NOTE = ("Unseen phrasings: questions about facts the adapter trained on, in a wording it "
               "never saw; unseen facts: facts it never trained on. Arms that trained on nothing "
               "(base, rag) are scored on the same questions, as the fine-tuned arm sorted them.")


def money(value: float | None) -> str:
    if value is None:
        return NOT_MEASURED
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.2g}"  # a cent fraction is the figure itself here (cost per answer)


def number(value: float | None, digits: int = 0) -> str:
    return NOT_MEASURED if value is None else f"{value:,.{digits}f}"


def share(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.0%}"


def measure(m: Measure, digits: int = 2) -> str:
    """'0.62 [0.41, 0.79] n=24 held-out', as much of it as is known."""
    if m.value is None:
        return NOT_MEASURED
    text = f"{m.value:.{digits}f}"
    if m.low is not None and m.high is not None:
        text += f" [{m.low:.{digits}f}, {m.high:.{digits}f}]"
    if m.n:
        text += f" n={m.n}"
    if m.split:
        text += f" {m.split}"
    return text


def reason_number(value: float | None, dollars: float | None) -> str:
    """A reason's number: its dollars when it has them, else its value (two significant
    figures: a reason is an argument, not an invoice)."""
    if dollars:
        return money(dollars)
    if value is None:
        return ""
    return f"{value:,.2g}" if abs(value) < 1000 else f"{value:,.0f}"


def pivot(rows: list[SensitivityRow]) -> tuple[list[str], list[tuple[str, list[SensitivityRow | None]]]]:
    """Driver x change grid of sensitivity rows (one line per driver reads faster than one
    per cell)."""
    changes = list(dict.fromkeys(r.change for r in rows))
    drivers: dict[str, dict[str, SensitivityRow]] = {}
    for r in rows:
        drivers.setdefault(r.driver, {})[r.change] = r
    return changes, [(d, [cells.get(c) for c in changes]) for d, cells in drivers.items()]


def difference(t: PairedTest) -> str:
    """'a - b' accuracy difference with its interval: '-0.23 [-0.47, 0.00]'."""
    if t.diff is None:
        return NOT_MEASURED
    text = f"{t.diff:+.2f}"
    if t.low is not None and t.high is not None:
        text += f" [{t.low:+.2f}, {t.high:+.2f}]"
    return text


def p_value(p: float | None) -> str:
    if p is None:
        return NOT_MEASURED
    return "<0.001" if p < 0.001 else f"{p:.3f}"
