"""Embedders: the shipped MiniLM, and any OpenAI-compatible /v1/embeddings through the SDK,
tested against a real local HTTP server."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from server.openai_endpoint import MODEL, OpenAIEndpoint, stub_vector

from ragortune.embed import OpenAIEmbedder
from ragortune.errors import ConfigError


def test_vectors_come_back_in_the_callers_order_when_batched_by_length(embedder):
    """The embedder regroups texts by token length; each caller still gets its own row."""
    texts = [("word " * n).strip() + f" number {n}" for n in (3, 40, 1, 90, 7, 60, 2, 25)] * 5
    batched = embedder.embed(texts)
    one_by_one = np.stack([embedder.embed([text])[0] for text in texts[:8]])
    assert batched.shape == (len(texts), embedder.dimension) and batched.dtype == np.float32
    np.testing.assert_allclose(batched[:8], one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


@pytest.fixture
def endpoint():
    with OpenAIEndpoint(api_key="sk-test", dimension=8) as running:
        yield running


def test_openai_embedder_probes_the_dimension_and_returns_unit_rows_in_order(endpoint):
    embedder = OpenAIEmbedder(MODEL, endpoint.url, "sk-test", batch_size=3)
    texts = [f"text number {i}" for i in range(7)]
    vectors = embedder.embed(texts)
    expected = np.array([stub_vector(t, 8) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert embedder.dimension == 8 and embedder.name == f"openai:{MODEL}"
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    batches = endpoint.bodies("/v1/embeddings")
    assert [len(b["input"]) for b in batches] == [1, 3, 3, 1]  # the probe, then batches of 3
    assert {b["encoding_format"] for b in batches} == {"float"}


def test_openai_embedder_retries_a_failing_endpoint(endpoint):
    embedder = OpenAIEmbedder(MODEL, endpoint.url, "sk-test", dimension=8)
    endpoint.fail_next(502)
    assert embedder.embed(["a", "b"]).shape == (2, 8)
    assert len(endpoint.bodies("/v1/embeddings")) == 2


def test_openai_embedder_errors_name_the_setting_to_fix(endpoint, monkeypatch):
    with pytest.raises(ConfigError, match="HTTP 401.*set RAGORTUNE_EMBED_API_KEY"):
        OpenAIEmbedder(MODEL, endpoint.url, "wrong")
    with pytest.raises(ConfigError, match="HTTP 404.*model 'nope'"):
        OpenAIEmbedder("nope", endpoint.url, "sk-test")
    for var in ("RAGORTUNE_EMBED_BASE_URL", "RAGORTUNE_EMBED_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="needs a key: set RAGORTUNE_EMBED_API_KEY"):
        OpenAIEmbedder("text-embedding-3-small")


def test_ingest_through_an_openai_compatible_embedder_and_its_errors_on_the_cli(endpoint, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nStaff get 25 days of paid leave a year.\n")
    env = {**os.environ, "RAGORTUNE_EMBED_BASE_URL": endpoint.url,
           "RAGORTUNE_EMBED_API_KEY": "sk-test"}
    ingest = [sys.executable, "-c", "from ragortune.cli import main; main()", "ingest", str(docs),
              "--kb", str(tmp_path / "kb"), "--embedder", f"openai:{MODEL}", "--json"]
    done = subprocess.run(ingest, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["chunks_embedded"] == 1
    assert json.loads((tmp_path / "kb" / "kb.json").read_text())["dimension"] == 8
    (docs / "leave.md").write_text("# Leave\n\nStaff get 30 days of paid leave a year.\n")
    env["RAGORTUNE_EMBED_API_KEY"] = "revoked"
    done = subprocess.run(ingest, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: embedding endpoint {endpoint.url} answered HTTP 401")
