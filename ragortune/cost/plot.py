"""The cumulative-cost chart: one curve per option, break-even points marked.

Built on a bare matplotlib `Figure` (Agg canvas), so it never touches pyplot's global state
or needs a display.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ragortune.cost.breakeven import PairBreakEven
from ragortune.cost.tco import OPTIONS, Simulation

_SHORT = {"rag": "RAG", "ft_api": "FT-API", "ft_self_hosted": "FT-self", "hybrid": "Hybrid"}
_COLOURS = {"rag": "#1f77b4", "ft_api": "#d62728", "ft_self_hosted": "#9467bd",
            "hybrid": "#2ca02c"}


def _dollars(value: float, _pos: object = None) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"${value / size:,.1f}{suffix}"
    return f"${value:,.0f}"


def plot_cumulative(sim: Simulation, pairs: list[PairBreakEven], path: Path | str,
                    title: str = "") -> Path:
    """Write the PNG (left: cumulative cost; right: cost per month) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(11, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    cum_ax, month_ax = fig.subplots(1, 2)
    for name in OPTIONS:
        opt = sim.options[name]
        label = f"{opt.label}: {_dollars(opt.total)}"
        cum_ax.plot(sim.months, opt.cumulative, label=label, color=_COLOURS[name], lw=2)
        month_ax.plot(sim.months, opt.monthly, color=_COLOURS[name], lw=1.5)
    for pair in pairs:
        if pair.break_even_month is None:
            continue
        month = pair.break_even_month
        y = sim.options[pair.cheaper_at_horizon].cumulative[month - 1]
        cum_ax.plot([month], [y], marker="o", color="black", ms=5, zorder=5)
        loser = pair.b if pair.cheaper_at_horizon == pair.a else pair.a
        cum_ax.annotate(f"m{month}: {_SHORT[pair.cheaper_at_horizon]} < {_SHORT[loser]}",
                        (month, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    totals = [opt.total for opt in sim.options.values()]
    # Options often differ by orders of magnitude; a log axis keeps the cheap ones readable.
    if min(totals) > 0 and max(totals) / min(totals) > 20:
        cum_ax.set_yscale("log")
    if all(float(opt.monthly.min()) > 0 for opt in sim.options.values()):
        month_ax.set_yscale("log")
    log_note = {ax: " (log scale)" if ax.get_yscale() == "log" else "" for ax in (cum_ax, month_ax)}
    cum_ax.set_title(f"Cumulative cost, break-even months marked{log_note[cum_ax]}")
    month_ax.set_title(f"Cost per month{log_note[month_ax]}")
    for ax in (cum_ax, month_ax):
        ax.set_xlabel("month")
        ax.yaxis.set_major_formatter(FuncFormatter(_dollars))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
        ax.grid(alpha=0.3)
        ax.set_xlim(1, max(2, int(sim.months[-1])))
    cum_ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
