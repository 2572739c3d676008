"""Loading models on a cold cache leaves the user's terminal alone: no "Loading weights" or
GGUF de-quantisation bars, no library warnings on stderr; our own errors still show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragortune.embed_onnx import quiet_model_loading
from ragortune.errors import ConfigError


def _cold_env(tmp_path: Path) -> dict[str, str]:
    """A fresh ragortune cache: the ONNX export and the GGUF conversion run again."""
    return {**os.environ, "RAGORTUNE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
            "COLUMNS": "80"}


def test_ingest_on_a_cold_cache_writes_nothing_to_stderr(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Shelves\n\nShelf 4 holds the spare routers.\n")
    done = subprocess.run([sys.executable, "-c", "from ragortune.cli import main; main()",
                           "ingest", str(docs), "--kb",
                           str(tmp_path / "kb")], env=_cold_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cache").is_dir()  # the export really ran in this process
    assert done.stderr == ""


def test_loading_the_shipped_llm_on_a_cold_cache_writes_nothing_to_stderr(tmp_path):
    code = ("from ragortune.models import load_causal_lm; tok, lm = load_causal_lm(); "
            "print(type(lm).__name__)")
    done = subprocess.run([sys.executable, "-c", code], env=_cold_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    assert "CausalLM" in done.stdout
    assert any((tmp_path / "cache").iterdir())  # the GGUF was converted, not read from a cache
    assert done.stderr == ""


def test_what_a_library_wrote_is_replayed_when_the_load_fails(capsys):
    with quiet_model_loading():
        print("Loading weights: 100%", file=sys.stderr)
    assert capsys.readouterr().err == ""
    with pytest.raises(ConfigError), quiet_model_loading():
        print("safetensors header is corrupt", file=sys.stderr)
        raise ConfigError("cannot load model 'x'")
    assert "safetensors header is corrupt" in capsys.readouterr().err
