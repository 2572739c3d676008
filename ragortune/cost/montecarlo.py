"""Ranges for the uncertain drivers and seeded draws from them.

Each driver has a low / likely / high: from the scenario's [uncertainty] table ("range"), from
measured evidence (narrowed to +-5 %, "measured"), or a default spread around the point value
("assumed"). A draw is a `Drivers`; the same seed gives the same draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ragortune.cost.scenario import Scenario
from ragortune.cost.tco import CostModel, Drivers

# Default spreads for assumed drivers: (low, high) as multiples of the point value, or as
# absolute offsets for the rates that may be zero.
_ASSUMED_FACTORS = {"queries_per_month": (0.6, 1.6), "change_per_month": (0.5, 1.5),
                    "labour_days": (0.8, 1.5), "prompt_tokens": (0.8, 1.25),
                    "requests_per_gpu_minute": (0.6, 1.3)}
_MEASURED = (0.95, 1.05)
LABELS = {"queries_per_month": "query volume (queries a month)",
          "query_growth_per_month": "query growth a month",
          "change_per_month": "share of the corpus rewritten a month",
          "labour_days": "labour days (x the scenario's)",
          "prompt_tokens": "RAG prompt tokens per query",
          "requests_per_gpu_minute": "GPU throughput (requests a minute)",
          "price_drift_per_year": "API price change a year"}


@dataclass(frozen=True)
class UncertainInput:
    name: str
    low: float
    likely: float
    high: float
    basis: str  # "measured", "range" (scenario) or "assumed"
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": LABELS[self.name]}


def _points(scenario: Scenario, model: CostModel) -> dict[str, float]:
    t, c, srv = scenario.traffic, scenario.corpus, scenario.serving
    return {"queries_per_month": t.queries_per_month,
            "query_growth_per_month": t.growth_per_month,
            "change_per_month": c.change_per_month, "labour_days": 1.0,
            "prompt_tokens": model.tokens["rag"].prompt,
            "requests_per_gpu_minute": srv.requests_per_gpu_minute,
            "price_drift_per_year": 0.0}


def uncertain_inputs(model: CostModel) -> list[UncertainInput]:
    """Every uncertain driver with its range and whether it was measured, given or assumed."""
    s = model.scenario
    points, given = _points(s, model), s.uncertainty
    out = []
    for name, point in points.items():
        rng = getattr(given, name)
        if name == "prompt_tokens" and model.tokens["rag"].measured:
            out.append(UncertainInput(name, point * _MEASURED[0], point, point * _MEASURED[1],
                                      "measured", model.tokens["rag"].source))
        elif rng is not None:
            low, high = rng[0], rng[-1]
            likely = rng[1] if len(rng) == 3 else min(max(point, low), high)
            out.append(UncertainInput(name, low, likely, high, "range",
                                      "scenario [uncertainty]"))
        elif name in _ASSUMED_FACTORS:
            lo, hi = _ASSUMED_FACTORS[name]
            out.append(UncertainInput(name, point * lo, point, point * hi, "assumed",
                                      f"default spread x{lo:g} to x{hi:g}"))
        elif name == "query_growth_per_month":
            spread = max(0.5 * abs(point), 0.01)
            out.append(UncertainInput(name, max(-0.5, point - spread), point, point + spread,
                                      "assumed", f"default spread +-{spread:.1%} a month"))
        else:  # price drift: API prices have mostly fallen; assume -30 % to +5 % a year
            out.append(UncertainInput(name, -0.3, 0.0, 0.05, "assumed",
                                      "default: -30 % to +5 % a year"))
    return out


def sample(inputs: list[UncertainInput], draws: int, seed: int) -> dict[str, np.ndarray]:
    """`draws` seeded values per input: triangular on low / likely / high."""
    rng = np.random.default_rng(seed)
    out = {}
    for inp in inputs:
        if inp.high <= inp.low:
            out[inp.name] = np.full(draws, inp.likely)
        else:
            out[inp.name] = rng.triangular(inp.low, min(max(inp.likely, inp.low), inp.high),
                                           inp.high, draws)
    return out


def drivers_for(model: CostModel, values: dict[str, float]) -> Drivers:
    """The `Drivers` of one draw (values keyed like `uncertain_inputs`)."""
    s = model.scenario
    q0 = s.traffic.queries_per_month
    prompt0 = model.tokens["rag"].prompt
    rpm0 = s.serving.requests_per_gpu_minute
    return Drivers(
        queries=values["queries_per_month"] / q0 if q0 > 0 else 1.0,
        query_growth=values["query_growth_per_month"],
        change_share=values["change_per_month"],
        labour=values["labour_days"],
        prompt=values["prompt_tokens"] / prompt0,
        gpu_throughput=values["requests_per_gpu_minute"] / rpm0,
        price_drift=values["price_drift_per_year"],
    )
