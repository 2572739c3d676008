"""The cost chart: cumulative cost per option with its P10-P90 band, the pick marked,
break-even months labelled without overlaps, and cost per month beside it.

Built on a bare matplotlib `Figure` (Agg canvas), so it never touches pyplot's global state
or needs a display. A one-month horizon has no curve to draw: it becomes a bar chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from ragortune.cost.breakeven import PairBreakEven
from ragortune.cost.tco import OPTIONS, Simulation

SHORT = {"rag": "RAG", "prompting": "Prompting", "ft_api": "FT-API",
         "ft_self_hosted": "FT-self", "hybrid": "Hybrid", "hybrid_self_hosted": "Hybrid-self"}
_COLOURS = {"rag": "#1f77b4", "prompting": "#8c564b", "ft_api": "#d62728",
            "ft_self_hosted": "#9467bd", "hybrid": "#2ca02c", "hybrid_self_hosted": "#17becf"}
LABEL_GAP = 0.075  # axes fraction between stacked labels: more than one 8-pt text line


def _dollars(value: float, _pos: object = None) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            v = value / size
            return f"${v:,.0f}{suffix}" if v == int(v) else f"${v:,.1f}{suffix}"
    return f"${value:,.0f}" if abs(value) >= 1 else f"${value:.2g}"


def spread_labels(wanted: list[float], gap: float = LABEL_GAP, low: float = 0.0,
                  high: float = 1.0) -> list[float]:
    """Positions (axes fraction) as near `wanted` as possible, each at least `gap` apart."""
    order = np.argsort(wanted)
    placed = np.array(wanted, dtype=float)[order]
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - high if len(placed) else 0.0
    if overflow > 0:  # push the stack down, never below `low`
        placed -= overflow
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
        placed += max(0.0, low - placed[0])
    out = np.empty_like(placed)
    out[order] = placed
    return out.tolist()


def _log_axis(ax: Any) -> None:
    """Log scale with 1-2-5 ticks, so even a one-decade range shows several labelled ticks."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))


def build_figure(sim: Simulation, pairs: list[PairBreakEven], title: str = "",
                 bands: dict[str, dict[str, list[float]]] | None = None,
                 pick: str | None = None, options: list[str] | None = None) -> Figure:
    """The chart as a Figure (tests read its texts; `plot_cumulative` writes it).

    `options` limits the chart to the options that can meet the needs (default: all).
    """
    fig = Figure(figsize=(12, 5.2), dpi=110)
    FigureCanvasAgg(fig)
    shown = [n for n in OPTIONS if options is None or n in options]
    totals = {n: sim.options[n].total for n in shown}
    positive = [v for v in totals.values() if v > 0]
    wide = bool(positive) and max(positive) / min(positive) > 8  # else the cheap ones merge
    if len(sim.months) == 1:
        _one_month(fig, sim, bands, pick, wide, shown)
    else:
        _curves(fig, sim, pairs, bands, pick, wide, shown)
    if title:
        fig.suptitle(title + (f"  (pick: {SHORT[pick]})" if pick else ""))
    fig.tight_layout()
    return fig


def _one_month(fig: Figure, sim: Simulation, bands: Any, pick: str | None, wide: bool,
               names: list[str]) -> None:
    ax = fig.subplots(1, 1)
    values = [sim.options[n].total for n in names]
    x = np.arange(len(names))
    bars = ax.bar(x, values, color=[_COLOURS[n] for n in names], alpha=0.8)
    if bands:
        lo = [bands[n]["p10"][0] for n in names]
        hi = [bands[n]["p90"][0] for n in names]
        ax.errorbar(x, values, yerr=[np.maximum(0, np.subtract(values, lo)),
                                     np.maximum(0, np.subtract(hi, values))],
                    fmt="none", ecolor="black", capsize=4, label="P10-P90")
        ax.legend(fontsize=8, loc="upper left")
    if pick in names:
        bar = bars[names.index(pick)]
        bar.set_edgecolor("black")
        bar.set_linewidth(2.5)
        ax.annotate("pick", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=9,
                    fontweight="bold")
    ax.set_xticks(x, [SHORT[n] for n in names])
    if wide and min(values) > 0:
        _log_axis(ax)
    ax.yaxis.set_major_formatter(FuncFormatter(_dollars))
    ax.set_title("Cost of month 1 (one-month horizon: no curve to draw)"
                 + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.grid(alpha=0.3, axis="y")


def _curves(fig: Figure, sim: Simulation, pairs: list[PairBreakEven], bands: Any,
            pick: str | None, wide: bool, shown: list[str]) -> None:
    cum_ax, month_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1]})
    for name in shown:
        opt = sim.options[name]
        is_pick = name == pick
        label = f"{'PICK: ' if is_pick else ''}{opt.label}: {_dollars(opt.total)}"
        cum_ax.plot(sim.months, opt.cumulative, label=label, color=_COLOURS[name],
                    lw=3.2 if is_pick else 1.4, zorder=4 if is_pick else 3)
        if bands and name in bands:
            cum_ax.fill_between(sim.months, bands[name]["p10"], bands[name]["p90"],
                                color=_COLOURS[name], alpha=0.22 if is_pick else 0.09, lw=0)
        month_ax.plot(sim.months, opt.monthly, color=_COLOURS[name],
                      lw=3.2 if is_pick else 1.2)
    if pick:
        y = sim.options[pick].cumulative[-1]
        cum_ax.plot([sim.months[-1]], [y], marker="*", ms=16, color=_COLOURS[pick],
                    markeredgecolor="black", zorder=6)
    if wide and min(sim.options[n].total for n in shown) > 0:
        _log_axis(cum_ax)
    if all(float(sim.options[n].monthly.min()) > 0 for n in shown):
        lo = min(float(sim.options[n].monthly.min()) for n in shown)
        hi = max(float(sim.options[n].monthly.max()) for n in shown)
        if hi / lo > 20:
            _log_axis(month_ax)
    _break_even_labels(cum_ax, sim, [p for p in pairs if p.a in shown and p.b in shown], pick)
    for ax, what in ((cum_ax, "Cumulative cost, P10-P90 bands"), (month_ax, "Cost per month")):
        ax.set_title(what + (" (log scale)" if ax.get_yscale() == "log" else ""), fontsize=10)
        ax.set_xlabel("month")
        ax.yaxis.set_major_formatter(FuncFormatter(_dollars))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.set_xlim(1, int(sim.months[-1]))
    cum_ax.legend(fontsize=7.5, loc="upper left")


def _break_even_labels(ax: Any, sim: Simulation, pairs: list[PairBreakEven],
                       pick: str | None) -> None:
    """Mark break-evens that involve the pick (all of them when there is none); labels stack
    in a column at the right edge with leader lines, so they cannot overlap."""
    marks = []
    for pair in pairs:
        if pair.break_even_month is None or (pick and pick not in (pair.a, pair.b)):
            continue
        month = pair.break_even_month
        y = sim.options[pair.cheaper_at_horizon].cumulative[month - 1]
        loser = pair.b if pair.cheaper_at_horizon == pair.a else pair.a
        marks.append((month, y, f"m{month}: {SHORT[pair.cheaper_at_horizon]} < {SHORT[loser]}"))
    if not marks:
        return
    fig = ax.figure
    fig.canvas.draw()  # the axis limits and scale are final only after a draw
    to_axes = ax.transAxes.inverted()
    wanted = [float(to_axes.transform(ax.transData.transform((m, y)))[1]) for m, y, _ in marks]
    placed = spread_labels(wanted, low=0.02, high=0.6)
    for (month, y, text), ty in zip(marks, placed, strict=True):
        ax.plot([month], [y], marker="o", color="black", ms=5, zorder=5)
        ax.annotate(text, (month, y), xytext=(0.99, ty), textcoords="axes fraction",
                    ha="right", va="center", fontsize=8, gid="break-even",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "lw": 0.5},
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6})


def plot_cumulative(sim: Simulation, pairs: list[PairBreakEven], path: Path | str,
                    title: str = "", bands: dict[str, dict[str, list[float]]] | None = None,
                    pick: str | None = None, options: list[str] | None = None) -> Path:
    """Write the PNG and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    build_figure(sim, pairs, title, bands, pick, options).savefig(path, format="png")
    return path
