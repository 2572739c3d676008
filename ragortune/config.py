"""Settings: a flag beats an environment variable (`RAGORTUNE_<NAME>`), which beats
`ragortune.toml` in the working folder (top level or its `[ragortune]` table), which beats the
built-in default. pydantic-settings does the merge; a misspelt key in the file is an error
naming the key and the file, never silently ignored."""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ragortune.errors import ConfigError

CONFIG_FILE = "ragortune.toml"
ENV_PREFIX = "RAGORTUNE_"
# Tables of ragortune.toml that other parts of ragortune read (cost/prices.py: `[prices]`).
OTHER_TABLES = frozenset({"prices"})


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_threads() -> int:
    """Half the CPUs this process may use, at least 1. Measured on 2 shared cores: SmolLM2
    answered a RAG prompt in 4.2-4.5 s with 1 torch thread and 12-18 s with 2 (OpenMP
    workers spin against each other and everything else), and MiniLM embedded 300 chunks in
    17.7 s with 1 thread against 27.6 s with 2."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus // 2)


def configure_threads(environ: Any = os.environ) -> int:
    """Set the thread pools of torch (OpenMP), MKL and OpenBLAS before any of them loads, and
    keep the HF tokenizers' own pool off (it forks badly and competes with torch). What the
    user set wins: RAGORTUNE_THREADS for all three, or each variable itself. Returns the count."""
    wanted = environ.get("RAGORTUNE_THREADS")
    try:
        threads = max(1, int(wanted)) if wanted else default_threads()
    except ValueError:
        raise ConfigError(f"RAGORTUNE_THREADS={wanted!r} is not a whole number: set it to the "
                          "number of CPU threads to use, e.g. 4") from None
    given = next((environ[n] for n in THREAD_VARIABLES if environ.get(n, "").isdigit()), None)
    if not wanted and given:  # OMP_NUM_THREADS=4 alone: MKL and OpenBLAS follow it
        threads = int(given)
    for name in THREAD_VARIABLES:
        if wanted:
            environ[name] = str(threads)
        else:
            environ.setdefault(name, str(threads))
    environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return threads


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    kb: str = ".ragortune"
    embedder: str = "minilm"
    chunk_size: int = 240
    chunk_overlap: int = 30
    mode: str = "hybrid"
    k: int = 5
    min_score: float | None = None
    llm: str = "smollm2"
    store_url: str | None = None  # postgresql://... keeps the KB (named by `kb`) in PostgreSQL


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a `ragortune.toml` holds ({} when there is none); unknown keys refused."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    table = data.get("ragortune")
    if isinstance(table, dict):
        values, where = dict(table), f"{path} [ragortune]"
        strays = [key for key in data if key != "ragortune" and key not in OTHER_TABLES]
    else:
        values = {key: value for key, value in data.items() if key not in OTHER_TABLES}
        where, strays = str(path), []
    for key in [*values, *strays]:
        if key not in Settings.model_fields:
            close = difflib.get_close_matches(key, Settings.model_fields, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{where}: unknown setting '{key}': {hint}valid settings are "
                f"{', '.join(Settings.model_fields)}"
                + (f"; tables: {', '.join(f'[{t}]' for t in sorted(OTHER_TABLES))}" if not table else ""))
    return values


def load_settings(overrides: dict[str, Any] | None = None, folder: Path | None = None) -> Settings:
    """Merge defaults, `ragortune.toml` in `folder` (default: the working folder), environment
    and the non-None flag values of `overrides`."""
    path = (folder or Path.cwd()) / CONFIG_FILE
    file_values = read_config_file(path)
    flags = {key: value for key, value in (overrides or {}).items() if value is not None}

    class FromFolder(Settings):  # the file's values as the lowest-priority source
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, **_: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, InitSettingsSource(settings_cls, file_values)

    try:
        return Settings.model_validate(FromFolder(**flags).model_dump(exclude_unset=True))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        raise ConfigError(f"setting '{field}': {error['msg']} (from {_origin(field, flags, path)})"
                          ) from None


def _origin(field: str, flags: dict[str, Any], path: Path) -> str:
    """Where the winning value of a setting came from, so an error points at the right place."""
    if field in flags:
        return f"--{field.replace('_', '-')}"
    if f"{ENV_PREFIX}{field.upper()}" in os.environ:
        return f"the environment variable {ENV_PREFIX}{field.upper()}"
    if field not in Settings.model_fields:
        return "an unknown flag"
    return str(path)
