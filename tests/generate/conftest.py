"""Session fixtures: the shipped SmolLM2 and a small knowledge base, each built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragortune.generate.local import LocalLLM
from ragortune.kb.sync import sync
from ragortune.kb import KnowledgeBase, open_kb

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def smollm2() -> LocalLLM:
    return LocalLLM.load()


@pytest.fixture(scope="session")
def small_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """Four short policy documents (tests/generate/data/docs), ingested with the default embedder."""
    kb = open_kb(tmp_path_factory.mktemp("kb") / "kb", create=True)
    sync(kb, [DATA / "docs"])
    return kb
