"""Where the cheapest option changes: break-even months, volumes, retraining rates, sensitivity.

All searches rerun the whole cost model (it is a few numpy operations), so the answers hold
for every cost line, including the step changes of GPU counts, not just a linear fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ragortune.cost.tco import OPTIONS, CostModel, Drivers, Simulation

FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
DRIVERS = ("queries", "change", "prompt", "labour")
_VOLUME_GRID = np.geomspace(1e-3, 1e3, 61)
_MAX_RETRAINS = 60.0  # twice a day: beyond this, "retraining to stay fresh" is not a plan


@dataclass(frozen=True)
class PairBreakEven:
    a: str
    b: str
    cheaper_at_horizon: str
    difference_at_horizon: float
    break_even_month: int | None
    break_even_queries_per_month: float | None
    cheaper_above_break_even: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def break_even_month(cum_a: np.ndarray, cum_b: np.ndarray) -> int | None:
    """First month from which the cumulative order stays the reverse of month 1's, or None."""
    diff = np.sign(cum_a - cum_b)
    start, end = diff[0], diff[-1]
    if end == 0 or end == start:
        return None
    not_final = np.nonzero(diff != end)[0]
    return int(not_final[-1]) + 2  # months are 1-based; the month after the last other order


def _bisect(f: Any, lo: float, hi: float, f_lo: float, steps: int = 40, log: bool = False
            ) -> float:
    for _ in range(steps):
        mid = float(np.sqrt(lo * hi)) if log else (lo + hi) / 2
        f_mid = f(mid)
        if np.sign(f_mid) == np.sign(f_lo):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return hi


def pair_break_evens(model: CostModel, sim: Simulation) -> list[PairBreakEven]:
    """Every pair of options: who is cheaper, from which month, and above which volume."""
    base_queries = model.scenario.traffic.queries_per_month
    grid = np.array([[model.run(Drivers(queries=x)).options[o].total for o in OPTIONS]
                     for x in _VOLUME_GRID]) if base_queries > 0 else None
    out = []
    for a, b in combinations(OPTIONS, 2):
        oa, ob = sim.options[a], sim.options[b]
        volume, above = None, None
        if grid is not None:
            ia, ib = OPTIONS.index(a), OPTIONS.index(b)
            d = grid[:, ia] - grid[:, ib]
            flips = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
            if flips.size:
                i = int(flips[0])

                def diff(x: float, a: str = a, b: str = b) -> float:
                    run = model.run(Drivers(queries=x)).options
                    return run[a].total - run[b].total

                x = _bisect(diff, _VOLUME_GRID[i], _VOLUME_GRID[i + 1], d[i], log=True)
                volume = x * base_queries
                above = a if d[i + 1] < 0 else b
        out.append(PairBreakEven(
            a=a, b=b,
            cheaper_at_horizon=a if oa.total <= ob.total else b,
            difference_at_horizon=oa.total - ob.total,
            break_even_month=break_even_month(oa.cumulative, ob.cumulative),
            break_even_queries_per_month=volume,
            cheaper_above_break_even=above,
        ))
    return out


def retrain_break_even(model: CostModel, ft_option: str, against: str) -> float | None:
    """Retrains per month at which `ft_option` stops being cheaper than `against`.

    None when fine-tuning is not cheaper even without any retraining; `inf` when it stays
    cheaper at any plausible retraining rate.
    """
    def diff(r: float) -> float:
        run = model.run(Drivers(retrains_per_month=r)).options
        return run[ft_option].total - run[against].total

    d0 = diff(0.0)
    if d0 >= 0:
        return None
    if diff(_MAX_RETRAINS) < 0:
        return float("inf")
    return _bisect(diff, 0.0, _MAX_RETRAINS, d0)


def sensitivity(model: CostModel) -> list[dict[str, Any]]:
    """Totals per option and the cheapest one with each main driver scaled by FACTORS."""
    rows = []
    for driver in DRIVERS:
        for factor in FACTORS:
            sim = model.run(Drivers(**{driver: factor}))
            rows.append({"driver": driver, "factor": factor, "totals": sim.totals(),
                         "cheapest": sim.cheapest()})
    return rows
