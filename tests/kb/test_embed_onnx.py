"""The ONNX Runtime path for the shipped MiniLM: the same vectors as sentence-transformers on
torch (so KBs built with either runtime stay interchangeable), an int8 option that is its own
embedder, and exports cached by the weights' hash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragortune.embed import LocalEmbedder, load_embedder, shipped_minilm_path
from ragortune.embed_onnx import OnnxEmbedder
from ragortune.errors import KnowledgeBaseError
from ragortune.kb import open_kb
from ragortune.kb.sync import sync
from ragortune.retrieve import search

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "scifact" / "corpus.jsonl"
DOCS = {
    "pricing.md": "# Pricing\n\nThe Pro plan costs $49 per month. The Team plan costs $99 per month.\n",
    "leave.md": "# Leave\n\nEmployees get 25 days of paid leave per year.\n",
    "routers.txt": "Configuring routers: set the uplink port before enabling the firewall.\n",
}


@pytest.fixture(scope="module")
def torch_embedder() -> LocalEmbedder:
    return LocalEmbedder("minilm", shipped_minilm_path())


def scifact_chunks(count_tokens, n_docs: int = 60) -> list[str]:
    """Chunk texts exactly as an ingest embeds them, from every 80th SciFact abstract."""
    from ragortune.documents.chunk import chunk_document
    from ragortune.documents.loaders import Document
    from ragortune.kb import KBSettings

    if not SCIFACT.is_file():
        pytest.skip(f"SciFact is not at {SCIFACT} (shared data set absent)")
    settings = KBSettings(embedder="minilm", dimension=384)
    rows = [json.loads(line) for line in SCIFACT.read_text().splitlines()[::80][:n_docs]]
    texts = []
    for row in rows:
        doc = Document(key=row["_id"], doc_id=row["_id"], source=str(SCIFACT),
                       title=row.get("title") or "", text=row["text"], format="jsonl")
        texts += [c.embed_text for c in chunk_document(doc, count_tokens, settings.chunk_size,
                                                       settings.chunk_overlap)]
    return texts


def test_default_minilm_runs_on_onnx_runtime_under_the_same_name(embedder) -> None:
    assert isinstance(embedder, OnnxEmbedder)
    assert (embedder.name, embedder.dimension) == ("minilm", 384)


def test_torch_runtime_stays_selectable(monkeypatch) -> None:
    monkeypatch.setenv("RAGORTUNE_EMBED_RUNTIME", "torch")
    assert isinstance(load_embedder.__wrapped__("minilm"), LocalEmbedder)


def test_onnx_vectors_match_torch_on_every_sampled_scifact_chunk(embedder, torch_embedder) -> None:
    texts = scifact_chunks(embedder.count_tokens)
    assert len(texts) >= 60
    cosine = (embedder.embed(texts) * torch_embedder.embed(texts)).sum(axis=1)
    assert cosine.min() >= 0.999


def test_a_kb_built_on_torch_is_searched_with_onnx(tmp_path, embedder, torch_embedder) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    sync(open_kb(tmp_path / "kb", embedder=torch_embedder, create=True), [folder])
    kb = open_kb(tmp_path / "kb")  # reopened with the default embedder: ONNX
    assert isinstance(kb.embedder, OnnxEmbedder)
    hit = search(kb, "How much is the subscription?", k=1, mode="dense")[0]
    assert hit.source.endswith("pricing.md") and hit.similarity > 0.3
    query = "How much is the subscription?"
    assert float(embedder.embed([query])[0] @ torch_embedder.embed([query])[0]) >= 0.999


def test_the_export_is_cached_and_reused(embedder) -> None:
    stamp = embedder.onnx_path.stat().st_mtime_ns
    again = OnnxEmbedder("minilm", shipped_minilm_path())
    assert again.onnx_path == embedder.onnx_path and embedder.onnx_path.stat().st_mtime_ns == stamp


def test_int8_is_a_smaller_model_under_its_own_name(tmp_path, embedder) -> None:
    int8 = load_embedder("minilm-int8")
    assert int8.name == "minilm-int8" and int8.dimension == 384
    assert int8.onnx_path.stat().st_size < embedder.onnx_path.stat().st_size / 3
    texts = list(DOCS.values())
    cosine = (int8.embed(texts) * embedder.embed(texts)).sum(axis=1)
    assert np.all(cosine > 0.85)  # close, not equal: hence its own name
    open_kb(tmp_path / "kb", embedder=embedder, create=True)
    with pytest.raises(KnowledgeBaseError, match="minilm"):
        open_kb(tmp_path / "kb", embedder=int8)
