"""Settings: a flag beats an environment variable (`RAGORTUNE_<NAME>`), which beats
`ragortune.toml` in the working folder, which beats the built-in default."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ragortune.errors import ConfigError

CONFIG_FILE = "ragortune.toml"


class Settings(BaseModel, extra="allow"):
    kb: str = ".ragortune"
    embedder: str = "minilm"
    chunk_size: int = 240
    chunk_overlap: int = 30
    mode: str = "hybrid"
    k: int = 5
    min_score: float | None = None
    llm: str = "smollm2"
    store_url: str | None = None  # postgresql://... keeps the KB (named by `kb`) in PostgreSQL


def load_settings(overrides: dict[str, Any] | None = None, folder: Path | None = None) -> Settings:
    """Merge defaults, `ragortune.toml`, environment and non-None flag values."""
    values: dict[str, Any] = {}
    path = (folder or Path.cwd()) / CONFIG_FILE
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        values.update(data.get("ragortune", data))
    for name in Settings.model_fields:
        env = os.environ.get(f"RAGORTUNE_{name.upper()}")
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise ConfigError(f"setting '{field}': {error['msg']} (check {CONFIG_FILE}, "
                          f"RAGORTUNE_{field.upper()} or the flag)") from None
