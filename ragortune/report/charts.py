"""The report's charts as inline SVG strings (matplotlib, no script, no request anywhere).

Text stays text (`svg.fonttype = none`): small, selectable, printed sharp. Labels sit at
the right-hand end of each curve and are spread apart vertically, so they never overlap;
break-even points are plain markers listed in a table beside the chart.
"""

from __future__ import annotations

import io
import re
import textwrap

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from ragortune.report.model import ArmRow, CostView

COLOURS = {"rag": "#1f77b4", "ft_api": "#d62728", "ft_self_hosted": "#9467bd",
           "hybrid": "#2ca02c", "prompting": "#8c564b"}
_FALLBACK = ("#ff7f0e", "#17becf", "#7f7f7f", "#bcbd22")
ARM_COLOUR = {"rag": "rag", "ft": "ft_api", "hybrid": "hybrid", "base": ""}


def dollars(value: float, _pos: object = None) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"${value / size:,.3g}{suffix}"
    return f"${value:,.0f}"


def _svg(fig: Figure, salt: str) -> str:
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        FigureCanvasSVG(fig)
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: inline in HTML
    # Scale with the page: keep the viewBox, let CSS decide the width.
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  rf'<svg\1 class="chart" role="img" aria-label="{salt}"', text, count=1)


def _spread(positions: list[float], gap: float) -> list[float]:
    """Move sorted label positions apart until neighbours are at least `gap` apart, keeping
    their mean where it was (labels of close curves stack instead of overlapping)."""
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    placed = [positions[i] for i in order]
    for _ in range(50):
        moved = False
        for j in range(1, len(placed)):
            if placed[j] - placed[j - 1] < gap:
                push = (gap - (placed[j] - placed[j - 1])) / 2
                placed[j - 1] -= push
                placed[j] += push
                moved = True
        if not moved:
            break
    out = [0.0] * len(positions)
    for rank, i in enumerate(order):
        out[i] = placed[rank]
    return out


def cost_chart(cost: CostView, pick: str | None) -> str:
    """Cumulative cost per option with its P10-P90 band when the model gave one, break-even
    months marked, the recommended option drawn bold and labelled as the pick."""
    fig = Figure(figsize=(9.6, 4.6), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    colours = {c.option: COLOURS.get(c.option, _FALLBACK[i % len(_FALLBACK)])
               for i, c in enumerate(cost.curves)}
    horizon = len(cost.curves[0].cumulative)
    if horizon < 2:  # one month: a line has nothing to draw; bars say the same honestly
        names = [c.label + ("  (pick)" if c.option == pick else "") for c in cost.curves]
        values = [c.cumulative[-1] for c in cost.curves]
        bars = ax.barh(names, values, color=[colours[c.option] for c in cost.curves])
        for bar, curve in zip(bars, cost.curves):
            if curve.p10 and curve.p90:
                ax.errorbar([curve.cumulative[-1]], [bar.get_y() + bar.get_height() / 2],
                            xerr=[[curve.cumulative[-1] - curve.p10[-1]],
                                  [curve.p90[-1] - curve.cumulative[-1]]], color="black",
                            capsize=4)
        ax.xaxis.set_major_formatter(FuncFormatter(dollars))
        ax.set_title("Cost of the first month (P10-P90 where given)")
        ax.invert_yaxis()
        fig.tight_layout()
        return _svg(fig, "cost chart")
    months = list(range(1, horizon + 1))
    for curve in sorted(cost.curves, key=lambda c: c.option == pick):
        colour = colours[curve.option]
        if curve.p10 and curve.p90:
            ax.fill_between(months, curve.p10, curve.p90, color=colour, alpha=0.15, lw=0)
        ax.plot(months, curve.cumulative, color=colour,
                lw=3.2 if curve.option == pick else 1.6, zorder=4 if curve.option == pick else 3)
    by_name = {c.option: c for c in cost.curves}
    for pair in cost.break_even:
        if pair.month and pair.cheaper in by_name and 1 <= pair.month <= horizon:
            y = by_name[pair.cheaper].cumulative[pair.month - 1]
            ax.plot([pair.month], [y], marker="o", ms=6, mfc="white", mec="black", zorder=6)
    totals = [v for c in cost.curves for v in c.cumulative if v > 0]
    if totals and min(totals) > 0 and max(totals) / min(totals) > 20:
        ax.set_yscale("log")
        low, high = min(totals), max(totals)
        ticks = [m * 10 ** e for e in range(int(f"{low:e}".split("e")[1]),
                                            int(f"{high:e}".split("e")[1]) + 2)
                 for m in (1, 2, 5) if low / 2 <= m * 10 ** e <= high * 2]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    ax.yaxis.set_major_formatter(FuncFormatter(dollars))
    ax.set_xlim(1, horizon)
    ax.set_xlabel("month")
    ax.set_ylabel("cumulative cost")
    ax.grid(alpha=0.3)
    scale = " (log scale)" if ax.get_yscale() == "log" else ""
    bands = any(c.p10 for c in cost.curves)
    ax.set_title(f"Cumulative cost over {horizon} months{scale}"
                 + (", shaded P10-P90" if bands else "") + "; o = break-even", fontsize=10)
    # End labels in a right margin, spread in display space so that they never overlap.
    fig.subplots_adjust(left=0.09, right=0.73, top=0.91, bottom=0.12)
    ax.get_ylim()  # settles the autoscaled limits the transforms below read
    to_px = ax.transData.transform
    ends = [to_px((horizon, c.cumulative[-1]))[1] for c in cost.curves]
    labels = [textwrap.fill(f"{c.label}: {dollars(c.total)}" + (
        "  \u2605 pick" if c.option == pick else ""), 32) for c in cost.curves]
    lines = max(label.count("\n") + 1 for label in labels)
    spread = _spread(ends, gap=12.0 * lines + 3.0)
    to_axes = ax.transAxes.inverted().transform
    for curve, label, y_px, y_end in zip(cost.curves, labels, spread, ends):
        y = to_axes((0, y_px))[1]
        ax.annotate(label, xy=(1.0, to_axes((0, y_end))[1]), xycoords="axes fraction",
                    xytext=(1.03, y), textcoords="axes fraction", va="center", fontsize=8.5,
                    color=colours[curve.option],
                    fontweight="bold" if curve.option == pick else "normal",
                    arrowprops={"arrowstyle": "-", "color": colours[curve.option], "lw": 0.6})
    return _svg(fig, "cost chart")


def accuracy_chart(arms: list[ArmRow]) -> str:
    """Accuracy per arm with its 95% interval: overlapping bars mean 'not shown different'."""
    rows = [a for a in arms if a.accuracy.value is not None]
    fig = Figure(figsize=(9.6, 0.9 + 0.5 * max(1, len(rows))), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for i, arm in enumerate(rows):
        m = arm.accuracy
        colour = COLOURS.get(ARM_COLOUR.get(arm.name, ""), "#444444")
        low = m.low if m.low is not None else m.value
        high = m.high if m.high is not None else m.value
        ax.plot([low, high], [i, i], color=colour, lw=2.5, alpha=0.6)
        ax.plot([m.value], [i], "o", color=colour, ms=8)
        label = f"{m.value:.2f}" + (f" (n={m.n})" if m.n else "")
        # Beside the interval, on whichever side has room: never over another arm's row.
        right = high <= 0.75
        ax.annotate(label, (high if right else low, i), textcoords="offset points",
                    xytext=(8 if right else -8, 0), ha="left" if right else "right",
                    va="center", fontsize=9)
    ax.set_yticks(range(len(rows)), [a.name for a in rows])
    ax.set_ylim(-0.6, len(rows) - 0.2)
    ax.invert_yaxis()
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("accuracy on answerable questions, 95% interval")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _svg(fig, "accuracy chart")

