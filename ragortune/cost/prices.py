"""The price book: every price the cost model uses, and where it came from.

Lookup order for each price: user overrides (first layer wins) → genai-prices (maintained,
offline) → the packaged data files (fine-tuning and GPU prices, which genai-prices lacks).
Every answer is a `Price` that carries its source, so a report can say why a number is what it is.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragortune.errors import ConfigError, InputError

MTOK = "USD per 1M tokens"
GPU_HOUR = "USD per GPU-hour"
MODEL_KEYS = ("input_mtok", "output_mtok", "train_mtok", "ft_input_mtok", "ft_output_mtok")
# genai-prices matches bare names to a provider by prefix (gpt-, claude-); embeddings and
# most other names need the provider tried explicitly, most common first.
_PREFERRED_PROVIDERS = ("openai", "anthropic", "google", "mistral", "cohere", "voyageai",
                        "deepseek", "x-ai", "groq", "together", "fireworks")


@dataclass(frozen=True)
class Price:
    """One price with its provenance; `usd` is per `unit`."""

    usd: float
    unit: str
    source: str
    ref: str
    url: str | None = None
    as_of: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelOverride(_Strict):
    input_mtok: float | None = Field(None, ge=0)
    output_mtok: float | None = Field(None, ge=0)
    train_mtok: float | None = Field(None, ge=0)
    ft_input_mtok: float | None = Field(None, ge=0)
    ft_output_mtok: float | None = Field(None, ge=0)


class GpuOverride(_Strict):
    hour: float = Field(ge=0)


class PriceTable(_Strict):
    """The `[prices]` table of ragortune.toml or a scenario, or a whole price file."""

    file: str | None = None
    models: dict[str, ModelOverride] = {}
    gpus: dict[str, GpuOverride | float] = {}


@dataclass(frozen=True)
class Overrides:
    """One layer of user prices; `origin` names the file (and table) they came from."""

    origin: str
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    gpus: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _validation_message(exc: ValidationError, origin: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "float")))
        parts.append(f"field '{loc}': {err['msg']}")
    return f"{origin}: " + "; ".join(parts)


def overrides_from_table(table: dict[str, Any], origin: str, base_dir: Path | None = None
                         ) -> list[Overrides]:
    """Validate a `[prices]` table; a `file = ...` key adds that file as a lower layer."""
    try:
        parsed = PriceTable.model_validate(table)
    except ValidationError as exc:
        raise InputError(_validation_message(exc, origin) +
                         " (price keys: input_mtok, output_mtok, train_mtok, ft_input_mtok, "
                         "ft_output_mtok under [prices.models.\"NAME\"]; hour under "
                         "[prices.gpus.NAME])") from None
    models = {name.lower(): m.model_dump(exclude_none=True) for name, m in parsed.models.items()}
    gpus = {name.lower(): (g if isinstance(g, float | int) else g.hour)
            for name, g in parsed.gpus.items()}
    layers = [Overrides(origin=origin, models=models, gpus={k: float(v) for k, v in gpus.items()})]
    if parsed.file:
        path = Path(parsed.file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        layers += load_price_file(path)
    return layers


def load_price_file(path: Path | str) -> list[Overrides]:
    """Read a TOML or YAML price file (top-level `models`/`gpus`, or wrapped in `prices`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: price file not found; pass an existing .toml/.yaml file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML ({exc}); fix the syntax") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a table with 'models' and/or 'gpus'")
    table = data.get("prices", data)
    return overrides_from_table(table, str(path), path.parent)


def project_overrides(directory: Path | str = ".") -> list[Overrides]:
    """The `[prices]` table of ./ragortune.toml, if there is one."""
    path = Path(directory) / "ragortune.toml"
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    table = data.get("prices")
    return overrides_from_table(table, f"{path} [prices]", path.parent) if table else []


def _packaged(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("ragortune").joinpath("data", name).read_text("utf-8"))


def _to_float(value: Any) -> tuple[float, str | None]:
    if isinstance(value, TieredPrices):
        return float(value.base), "tiered price: base tier used (prompts below the first tier)"
    return float(value), None


class PriceBook:
    """Answers 'what does X cost' for models and GPUs; lookups are cached per book."""

    def __init__(self, overrides: list[Overrides] | None = None) -> None:
        self.overrides = list(overrides or [])
        self.finetune_rows = _packaged("finetune_prices.toml")["model"]
        self.gpu_rows = _packaged("gpu_prices.toml")["gpu"]
        self._snapshot = data_snapshot.get_snapshot()
        self._genai_cache: dict[str, tuple[str, Any, str | None] | None] = {}
        self.genai_version = genai_prices.__version__

    # -- lookups -----------------------------------------------------------------------
    def _override(self, name: str, key: str) -> Price | None:
        for layer in self.overrides:
            value = layer.models.get(name.lower(), {}).get(key)
            if value is not None:
                return Price(float(value), MTOK, f"override: {layer.origin}", name)
        return None

    def _genai(self, ref: str) -> tuple[str, Any, str | None] | None:
        """(provider/model id, ModelPrice, pricing URL) from genai-prices, or None."""
        if ref in self._genai_cache:
            return self._genai_cache[ref]
        provider_id, model_ref = None, ref
        if "/" in ref and any(p.id == ref.split("/", 1)[0] for p in self._snapshot.providers):
            provider_id, model_ref = ref.split("/", 1)
        found = None
        try:
            provider, model = self._snapshot.find_provider_model(model_ref, None, provider_id, None)
            found = (provider, model)
        except LookupError:
            if provider_id is None:
                order = sorted(self._snapshot.providers,
                               key=lambda p: (_PREFERRED_PROVIDERS + (p.id,)).index(p.id))
                for provider in order:
                    model = provider.find_model(model_ref.lower(),
                                                all_providers=self._snapshot.providers)
                    if model is not None:
                        found = (provider, model)
                        break
        result = None
        if found is not None:
            provider, model = found
            result = (f"{provider.id}/{model.id}", model.get_prices(datetime.now(tz=UTC)),
                      (provider.pricing_urls or [None])[0])
        self._genai_cache[ref] = result
        return result

    def _genai_price(self, ref: str, attr: str, name: str) -> Price | None:
        hit = self._genai(ref)
        if hit is None or getattr(hit[1], attr, None) is None:
            return None
        usd, note = _to_float(getattr(hit[1], attr))
        return Price(usd, MTOK, f"genai-prices {self.genai_version}", hit[0], url=hit[2],
                     note=note)

    def finetune_row(self, model: str) -> dict[str, Any] | None:
        name = model.lower().split("/", 1)[-1]
        for row in self.finetune_rows:
            if name in (row["model"].lower(), row.get("snapshot", "").lower()):
                return row
        return None

    def _row_price(self, model: str, key: str) -> Price | None:
        row = self.finetune_row(model)
        if row is None or row.get(key) is None:
            return None
        return Price(float(row[key]), MTOK, "ragortune/data/finetune_prices.toml",
                     f"{row['provider']}/{row['model']}", url=row.get("source"),
                     as_of=row.get("as_of"))

    def find(self, model: str, key: str) -> Price | None:
        """The price `key` (one of MODEL_KEYS) of `model`, or None when nobody carries it."""
        if key not in MODEL_KEYS:
            raise ValueError(f"unknown price key {key!r}")
        if (hit := self._override(model, key)) is not None:
            return hit
        if key in ("input_mtok", "output_mtok"):
            return self._genai_price(model, key, model)
        if key == "train_mtok":
            return self._row_price(model, key)
        # Fine-tuned inference: genai-prices knows some `ft:<snapshot>` models; the data file
        # covers the rest.
        row = self.finetune_row(model)
        if row is not None and row.get("snapshot"):
            attr = "input_mtok" if key == "ft_input_mtok" else "output_mtok"
            hit = self._genai_price(f"{row['provider']}/ft:{row['snapshot']}", attr, model)
            if hit is not None:
                return hit
        return self._row_price(model, key)

    def get(self, model: str, key: str, role: str = "") -> Price:
        """Like `find`, but a missing price is a ConfigError that says how to add it."""
        hit = self.find(model, key)
        if hit is None:
            where = "the packaged fine-tuning prices" if key.startswith(("train", "ft_")) else (
                f"genai-prices {self.genai_version}")
            raise ConfigError(
                f"no {key} price for model '{model}'{' (' + role + ')' if role else ''} in "
                f"{where}; add it to ragortune.toml or the scenario as [prices.models.\"{model}\"] "
                f"{key} = <USD per 1M tokens>, or pick a model `ragortune prices` lists")
        return hit

    def gpu_row(self, gpu: str) -> dict[str, Any] | None:
        name, _, provider = gpu.lower().partition("@")
        for row in self.gpu_rows:
            names = [row["gpu"].lower()] + [a.lower() for a in row.get("aliases", [])]
            if name in names and (not provider or provider == row["provider"].lower()):
                return row
        return None

    def gpu_hour(self, gpu: str) -> Price:
        for layer in self.overrides:
            if (value := layer.gpus.get(gpu.lower())) is not None:
                return Price(float(value), GPU_HOUR, f"override: {layer.origin}", gpu)
        row = self.gpu_row(gpu)
        if row is None:
            known = ", ".join(sorted({r["gpu"] for r in self.gpu_rows}))
            raise ConfigError(
                f"no hourly price for GPU '{gpu}'; use one of {known} (optionally NAME@provider) "
                f"or add [prices.gpus.\"{gpu}\"] hour = <USD> to ragortune.toml or the scenario")
        return Price(float(row["hour"]), GPU_HOUR, "ragortune/data/gpu_prices.toml",
                     f"{row['provider']}/{row['gpu']}", url=row.get("source"),
                     as_of=row.get("as_of"))

    # -- listings for `ragortune prices` -----------------------------------------------------
    def describe(self, name: str) -> dict[str, Any]:
        """Every price known for `name` (a model or a GPU), with sources; unknown ones are null."""
        prices = {key: (p.to_dict() if (p := self.find(name, key)) else None)
                  for key in MODEL_KEYS}
        gpu = None
        if self.gpu_row(name) is not None or any(name.lower() in o.gpus for o in self.overrides):
            gpu = self.gpu_hour(name).to_dict()
        return {"name": name, "prices": prices, "gpu_hour": gpu,
                "found": gpu is not None or any(v is not None for v in prices.values())}

    def catalogue(self) -> dict[str, Any]:
        return {
            "genai_prices_version": self.genai_version,
            "finetune": self.finetune_rows,
            "gpus": self.gpu_rows,
            "overrides": [layer.to_dict() for layer in self.overrides],
        }
