"""The ONNX Runtime path for sentence-transformers models: the same weights exported once to
ONNX (fp32, vectors equal to PyTorch's to cosine 1.0000) and run by onnxruntime, about 1.4x
faster on a laptop CPU; int8 (dynamic quantisation) is offered for more speed at a small
retrieval cost (bench/ingest.py measures it).

Exports are cached under `cache_dir()` in a folder named by the SHA-256 of the model's files,
so replaced weights never reuse a stale export.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragortune.errors import ConfigError

OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def cache_dir() -> Path:
    """Where converted models are kept: RAGORTUNE_CACHE_DIR, else the user's cache folder."""
    if os.environ.get("RAGORTUNE_CACHE_DIR"):
        return Path(os.environ["RAGORTUNE_CACHE_DIR"])
    root = os.environ.get("XDG_CACHE_HOME")
    return (Path(root) if root else Path.home() / ".cache") / "ragortune"


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _check_mean_pooling(folder: Path) -> int:
    """The pooled dimension; only mean pooling + normalisation (MiniLM's recipe) is exported."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((folder / pooling_dir / "config.json").read_text())
    except (OSError, ValueError, StopIteration, KeyError) as exc:
        raise ConfigError(f"{folder} is not a sentence-transformers folder the ONNX runtime "
                          f"can export ({exc.__class__.__name__}): use the torch runtime") from None
    if not pooling.get("pooling_mode_mean_tokens") or sum(
            bool(v) for k, v in pooling.items() if k.startswith("pooling_mode")) != 1:
        raise ConfigError(f"{folder} pools other than by mean: use the torch runtime")
    return int(pooling["word_embedding_dimension"])


def export(model_path: str | Path, *, quantize: bool = False) -> Path:
    """The cached `model.onnx` (fp32, or int8 with `quantize`) of a sentence-transformers
    folder, exported first when absent; atomic, so a killed export leaves nothing half-written."""
    import onnxruntime

    folder = Path(model_path)
    _check_mean_pooling(folder)
    kind = "int8" if quantize else "fp32"
    target = cache_dir() / f"onnx-{onnxruntime.__version__}-{kind}-{_fingerprint(folder)[:24]}"
    if (target / "model.onnx").is_file():
        return target / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        out = tmp / "out"
        out.mkdir()
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            with _quiet("root"):  # a suggestion to pre-process, printed on every quantisation
                quantize_dynamic(export(folder), out / "model.onnx", weight_type=QuantType.QInt8)
        else:
            _torch_export(folder, out / "model.onnx")
        try:
            os.replace(out, target)
        except OSError:
            if not (target / "model.onnx").is_file():  # another process winning the race is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / "model.onnx"


@contextlib.contextmanager
def quiet_model_loading() -> Iterator[None]:
    """Load models without the libraries' chatter on the user's terminal: transformers and
    hub progress bars and notices, the GGUF de-quantisation bar (a bare tqdm on stderr),
    peft's and torch's warnings. Our own errors are exceptions and pass through; if the load
    fails, whatever the libraries wrote is replayed on stderr, since it may explain why."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()
    captured = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
            for module in ("peft", "transformers", "torch", "sentence_transformers",
                           "huggingface_hub", "onnxruntime"):
                warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _torch_export(folder: Path, path: Path) -> None:
    import torch
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments in, one tensor out: what the legacy exporter traces cleanly. The
        encoder is a submodule so its weights export as initializers (which int8 quantises)."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state

    ids = torch.full((2, 8), 100, dtype=torch.long)
    # A padded row: with an all-ones mask transformers skips masking, and the trace would too.
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings(), quiet_model_loading():
        # no_grad: the tracer refuses inference mode; its warnings about shape checks fixed
        # for encoders are noise.
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHiddenState(), (ids, mask, torch.zeros_like(ids)), str(path),
                          input_names=list(INPUTS), output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


class OnnxEncoder:
    """The encoder half of a sentence-transformers model run by onnxruntime: tokenise, run,
    mean-pool over real tokens, normalise. `encode` takes SentenceTransformer.encode's
    arguments, so code written for one runs the other."""

    def __init__(self, model_path: str | Path, onnx_path: Path, threads: int | None = None):
        import onnxruntime
        from transformers import AutoTokenizer

        folder = Path(model_path)
        self.dimension = _check_mean_pooling(folder)
        config = json.loads((folder / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(config.get("max_seq_length", 512))
        with quiet_model_loading():
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.tokenizer.model_max_length = 1_000_000  # counting long texts is fine; encode truncates
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or max(1, min(len(os.sched_getaffinity(0)), 8))
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(onnx_path), options,
                                                    providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts: Sequence[str], batch_size: int = 16, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(list(texts[start:start + batch_size]), padding=True,
                                   truncation=True, max_length=self.max_seq_length,
                                   return_tensors="np")
            feeds = {k: v.astype(np.int64) for k, v in batch.items() if k in self._inputs}
            if "token_type_ids" in self._inputs and "token_type_ids" not in feeds:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            hidden = self.session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if normalize_embeddings:
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            rows.append(pooled.astype(np.float32))
        return np.concatenate(rows) if rows else np.zeros((0, self.dimension), np.float32)


def embed_by_length(texts: Sequence[str], count_tokens: Any, batch_size: int, dimension: int,
                    encode: Any) -> np.ndarray:
    """Longest texts first, in batches of near-equal token length, so padding costs almost
    nothing (sentence-transformers alone sorts by characters, a rougher guess); vectors come
    back in the order of `texts`. Shared by the torch and ONNX runtimes."""
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    if len(texts) <= batch_size:
        order = np.arange(len(texts))
    else:
        order = np.argsort([-n for n in count_tokens(texts)], kind="stable")
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        vectors[rows] = encode([texts[i] for i in rows])
    return vectors


class OnnxEmbedder:
    """A sentence-transformers model on onnxruntime behind the `Embedder` protocol; batches
    group texts of similar token length, as `LocalEmbedder`'s do."""

    def __init__(self, name: str, model_path: str | Path, *, quantize: bool = False,
                 batch_size: int = 16, threads: int | None = None):
        try:
            onnx_path = export(model_path, quantize=quantize)
        except ImportError:
            raise ConfigError("the ONNX runtime needs onnxruntime and onnx: "
                              "`pip install onnxruntime onnx`") from None
        self.model = OnnxEncoder(model_path, onnx_path, threads)
        self.onnx_path = onnx_path
        self.name = name
        self.dimension = self.model.dimension
        self.max_tokens = self.model.max_seq_length - 2
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_by_length(texts, self.count_tokens, self.batch_size, self.dimension,
                               lambda batch: self.model.encode(batch, batch_size=len(batch)))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(row) for row in
                self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
