"""One call from scenario to everything `ragortune cost` shows: TCO, break-evens, sensitivity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragortune.cost.breakeven import PairBreakEven, pair_break_evens, sensitivity
from ragortune.cost.measured import Evidence
from ragortune.cost.prices import (
    PriceBook,
    load_price_file,
    overrides_from_table,
    project_overrides,
)
from ragortune.cost.scenario import Scenario
from ragortune.cost.tco import LINES, CostModel, Simulation


def price_book_for(scenario: Scenario | None, scenario_path: Path | str | None = None,
                   price_file: Path | str | None = None, project_dir: Path | str = "."
                   ) -> PriceBook:
    """Override layers, highest first: --prices file, scenario [prices], ragortune.toml."""
    layers = []
    if price_file is not None:
        layers += load_price_file(price_file)
    if scenario is not None and scenario.prices:
        origin = f"{scenario_path or 'scenario'} [prices]"
        base = Path(scenario_path).parent if scenario_path else None
        layers += overrides_from_table(scenario.prices, origin, base)
    layers += project_overrides(project_dir)
    return PriceBook(layers)


@dataclass(frozen=True)
class CostAnalysis:
    model: CostModel
    simulation: Simulation
    pairs: list[PairBreakEven]
    sensitivity: list[dict[str, Any]]

    def to_dict(self, scenario_path: str | None = None) -> dict[str, Any]:
        """The `cost --json` document (schema in docs/cost.md)."""
        sim = self.simulation
        options = {}
        for name, opt in sim.options.items():
            options[name] = {
                "label": opt.label,
                "total": _r(opt.total),
                "first_month": _r(opt.monthly[0]),
                "last_month": _r(opt.monthly[-1]),
                "lines": {line: {"total": _r(opt.lines[line].sum()),
                                 "monthly": [_r(v) for v in opt.lines[line]]}
                          for line in LINES},
                "monthly": [_r(v) for v in opt.monthly],
                "cumulative": [_r(v) for v in opt.cumulative],
            }
        s = self.model.scenario
        return {
            "scenario": {"name": s.name, "path": scenario_path,
                         "horizon_months": s.horizon_months},
            "evidence": ({"path": self.model.evidence.path,
                          "keys_read": list(self.model.evidence.keys_read)}
                         if self.model.evidence else None),
            "assumptions": sim.derived,
            "options": options,
            "cheapest": sim.cheapest(),
            "break_even": [p.to_dict() for p in self.pairs],
            "sensitivity": self.sensitivity,
            "warnings": list(self.model.warnings),
        }


def _r(value: float) -> float:
    return round(float(value), 4)


def analyse(scenario: Scenario, book: PriceBook, evidence: Evidence | None = None
            ) -> CostAnalysis:
    model = CostModel(scenario, book, evidence)
    sim = model.run()
    return CostAnalysis(model, sim, pair_break_evens(model, sim), sensitivity(model))
