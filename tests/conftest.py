"""Shared fixtures: real models loaded once per session, real folders in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def embedder():
    """The shipped MiniLM embedder, loaded once for the whole run."""
    from ragortune.embed import load_embedder

    return load_embedder("minilm")
