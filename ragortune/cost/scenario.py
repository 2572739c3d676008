"""A cost scenario: the team's data, traffic, change rate, models and labour, read from TOML.

Every field is documented in examples/scenarios/README.md. Unknown keys are errors (a typo
must not silently fall back to a default), and every error names the file and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragortune.errors import InputError

Need = Literal["facts", "format", "style", "persona"]
Recommendation = Literal["rag", "prompting", "fine-tuning", "hybrid"]
# Drivers whose value is uncertain; each may get a [low, high] or [low, likely, high] range.
UNCERTAIN = ("queries_per_month", "query_growth_per_month", "change_per_month", "labour_days",
             "prompt_tokens", "requests_per_gpu_minute", "price_drift_per_year")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Corpus(_Strict):
    documents: int = Field(gt=0)
    tokens_per_document: float | None = Field(None, gt=0)
    tokens: float | None = Field(None, gt=0)
    growth_per_month: float = Field(0.0, ge=0, le=1)
    change_per_month: float = Field(0.0, ge=0, le=1)
    updates_per_month: float = Field(1.0, gt=0, le=31)

    @model_validator(mode="after")
    def _one_size(self) -> Corpus:
        if (self.tokens is None) == (self.tokens_per_document is None):
            raise ValueError("give exactly one of 'tokens' (whole corpus) or "
                             "'tokens_per_document'")
        return self

    @property
    def total_tokens(self) -> float:
        return self.tokens if self.tokens is not None else self.documents * self.tokens_per_document


class Traffic(_Strict):
    queries_per_month: float = Field(ge=0)
    growth_per_month: float = Field(0.0, ge=-0.5, le=1)
    question_tokens: int = Field(50, ge=1)
    answer_tokens: int = Field(250, ge=1)
    system_tokens: int = Field(150, ge=0)
    ft_system_tokens: int = Field(50, ge=0)
    chunk_tokens: int = Field(300, ge=1)
    top_k: int = Field(4, ge=1)
    rag_prompt_tokens: float | None = Field(None, gt=0)
    cached_input_discount: float = Field(0.5, ge=0, le=1)


class Models(_Strict):
    rag: str = "gpt-4o-mini"
    finetune: str = "gpt-4o-mini"
    embedding: str = "text-embedding-3-small"
    self_hosted: str = "llama-3.1-8b-instruct"


class FineTune(_Strict):
    examples: int = Field(1000, ge=1)
    tokens_per_example: float = Field(1000, gt=0)
    epochs: int = Field(3, ge=1)
    grows_with_corpus: bool = True
    retrain_every_months: float | None = Field(None, gt=0)
    hybrid_retrain_every_months: float | None = Field(6.0, gt=0)
    hosting_per_month: float = Field(0.0, ge=0)
    base_model_life_months: float | None = Field(12.0, gt=0)


class Labour(_Strict):
    rate_per_day: float = Field(800.0, ge=0)
    rag_build_days: float = Field(5.0, ge=0)
    rag_upkeep_days_per_month: float = Field(0.5, ge=0)
    eval_days_per_month: float = Field(1.0, ge=0)
    prompt_build_days: float = Field(2.0, ge=0)
    migration_days: float = Field(2.0, ge=0)
    dataset_build_days: float = Field(10.0, ge=0)
    dataset_refresh_days: float = Field(2.0, ge=0)
    self_host_setup_days: float = Field(5.0, ge=0)
    self_host_upkeep_days_per_month: float = Field(2.0, ge=0)


class Serving(_Strict):
    gpu: str = "A10G"
    hours_per_day: float = Field(24.0, gt=0, le=24)
    days_per_month: float = Field(30.0, gt=0, le=31)
    requests_per_gpu_minute: float = Field(60.0, gt=0)
    peak_to_average: float = Field(2.0, ge=1)
    min_gpus: int = Field(1, ge=1)
    model_params_b: float | None = Field(None, gt=0)
    weight_bytes: float = Field(2.0, gt=0)
    gpus_per_replica: int = Field(1, ge=1)
    gpu_memory_gb: float | None = Field(None, gt=0)
    train_gpu: str = "A100-80GB"
    train_method: Literal["lora", "qlora", "full"] = "lora"
    train_mfu: float = Field(0.15, gt=0, le=1)
    train_overhead_hours: float = Field(1.5, ge=0)
    train_gpu_hours: float | None = Field(None, ge=0)
    train_tokens_per_gpu_hour: float | None = Field(None, gt=0)


class VectorStore(_Strict):
    monthly: float = Field(0.0, ge=0)
    per_gb_month: float = Field(0.0, ge=0)
    per_million_reads: float = Field(0.0, ge=0)
    per_million_writes: float = Field(0.0, ge=0)
    reads_per_query: float = Field(1.0, ge=0)
    dimensions: int = Field(1536, ge=1)
    bytes_per_chunk: int = Field(2048, ge=0)


class Profile(_Strict):
    needs: list[Need] = Field(["facts"], min_length=1)
    behaviour_by_prompting: Literal["works", "fails", "untested"] = "untested"
    multi_domain: bool = False
    pre_revenue: bool = False
    latency_budget_ms: float | None = Field(None, gt=0)


class Uncertainty(_Strict):
    """Ranges for uncertain drivers: [low, high] (uniform) or [low, likely, high] (triangular)."""

    draws: int = Field(2000, ge=100, le=100_000)
    seed: int = 0
    confidence: float = Field(0.7, gt=0.5, lt=1)
    queries_per_month: list[float] | None = None
    query_growth_per_month: list[float] | None = None
    change_per_month: list[float] | None = None
    labour_days: list[float] | None = None
    prompt_tokens: list[float] | None = None
    requests_per_gpu_minute: list[float] | None = None
    price_drift_per_year: list[float] | None = None

    @model_validator(mode="after")
    def _ranges(self) -> Uncertainty:
        for name in UNCERTAIN:
            r = getattr(self, name)
            if r is None:
                continue
            if len(r) not in (2, 3) or list(r) != sorted(r):
                raise ValueError(f"'{name}' must be [low, high] or [low, likely, high] in "
                                 f"increasing order, got {r}")
        return self


class Expected(_Strict):
    recommendation: Recommendation
    serving: Literal["api", "self-hosted"] | None = None


class Scenario(_Strict):
    name: str
    description: str = ""
    horizon_months: int = Field(24, ge=1, le=120)
    corpus: Corpus
    traffic: Traffic
    models: Models = Models()
    finetune: FineTune = FineTune()
    labour: Labour = Labour()
    serving: Serving = Serving()
    vector_store: VectorStore = VectorStore()
    profile: Profile = Profile()
    uncertainty: Uncertainty = Uncertainty()
    expected: Expected | None = None
    prices: dict[str, Any] | None = None


def _field_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling against examples/scenarios/README.md)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        parts.append(f"field '{loc}': {msg}" if loc else msg)
    return "; ".join(parts)


def parse_scenario(data: dict[str, Any], origin: str = "<scenario>") -> Scenario:
    """Validate a scenario table; errors name `origin` and each bad field."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{origin}: {_field_errors(exc)}") from None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario TOML file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: scenario file not found; see examples/scenarios/ for examples")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    return parse_scenario(data, str(path))
