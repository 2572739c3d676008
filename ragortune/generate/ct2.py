"""The fast local backend: CTranslate2 running an int8 copy of a transformers model on the CPU
(about 2.3x faster than transformers fp32 for SmolLM2 on 2 cores; `RAGORTUNE_CT2_QUANTIZATION=
float32` gives transformers' answers word for word at 1.5x: docs/answers.md has the figures).

The copy is converted once (10-20 s) from the same weights transformers loads, with a LoRA
adapter merged in when one is given, and cached under `models.cache_dir()` in a folder named
by the SHA-256 of the weights and adapter files: a retrained adapter gets a new copy.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragortune.errors import ConfigError
from ragortune.generate.llm import Completion, Message, cut_at_stop, finished
from ragortune.models import SMOLLM2, cache_dir, export_merged, weights_fingerprint

QUANTIZATION_ENV = "RAGORTUNE_CT2_QUANTIZATION"
QUANTIZATIONS = ("int8", "int8_float32", "int16", "float32")
RECORD = "ragortune-conversion.json"


def default_threads() -> int:
    """One intra-op thread per usable core (8 at most: a 135M model gains nothing past that)."""
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def quantization() -> str:
    """The weight type of converted copies: `RAGORTUNE_CT2_QUANTIZATION`, int8 by default."""
    value = os.environ.get(QUANTIZATION_ENV, "int8").strip().lower()
    if value not in QUANTIZATIONS:
        raise ConfigError(f"{QUANTIZATION_ENV}={value!r} is not one of {', '.join(QUANTIZATIONS)}")
    return value


def converted_dir(fingerprint: str) -> Path:
    """Cache folder of the converted copy of the weights with this fingerprint; may not exist yet."""
    import ctranslate2

    return cache_dir() / f"ct2-{ctranslate2.__version__}-{quantization()}-{fingerprint[:24]}"


def convert(model: str | None = None, *, adapter: str | None = None) -> Path:
    """The converted copy's folder, converting it first when it is not cached (atomic: a concurrent
    or killed conversion never leaves a half-written copy where a loader looks)."""
    import ctranslate2

    fingerprint = weights_fingerprint(model, adapter=adapter)
    target = converted_dir(fingerprint)
    if (target / RECORD).is_file():
        return target
    from ctranslate2.converters import TransformersConverter

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        export_merged(model, adapter, tmp / "hf")
        try:
            TransformersConverter(str(tmp / "hf")).convert(str(tmp / "ct2"),
                                                           quantization=quantization())
        except (ValueError, NotImplementedError, KeyError) as exc:
            raise ConfigError(
                f"the fast backend cannot convert model {model or SMOLLM2!r} "
                f"({str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}); "
                f"run it with transformers instead: --llm hf:{model or SMOLLM2}"
            ) from exc
        for name in os.listdir(tmp / "hf"):  # the tokenizer and chat template travel with it
            if name.startswith(("tokenizer", "special_tokens", "chat_template")):
                shutil.copy2(tmp / "hf" / name, tmp / "ct2" / name)
        (tmp / "ct2" / RECORD).write_text(json.dumps({
            "model": model or SMOLLM2, "adapter": str(Path(adapter).resolve()) if adapter else None,
            "weights_sha256": fingerprint, "quantization": quantization(),
            "converter": f"ctranslate2 {ctranslate2.__version__}",
        }, indent=1) + "\n")
        try:
            os.replace(tmp / "ct2", target)
        except OSError:
            if not (target / RECORD).is_file():  # another process winning the race is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class CT2LLM:
    """A CTranslate2 generator behind the `LLM` protocol; greedy (top-1) at temperature 0.

    `complete` and `stream` run the same token loop, so a streamed answer equals the complete
    one. One generation at a time (a lock), as with the transformers backend.
    """

    def __init__(self, folder: str | Path, name: str, threads: int | None = None) -> None:
        import ctranslate2

        with open(Path(folder) / RECORD) as record:
            weights = json.load(record)["quantization"]
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        self.name = name
        self.threads = threads or default_threads()
        self.generator: Any = ctranslate2.Generator(
            str(self.folder), device="cpu", compute_type=weights,
            intra_threads=self.threads, inter_threads=1)
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(self.folder))
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model: str | None = None, *, adapter: str | None = None,
             threads: int | None = None) -> CT2LLM:
        """Convert (once) and load `model` (None/"smollm2" = shipped SmolLM2) with `adapter` merged."""
        name = model or SMOLLM2
        if adapter:
            name = f"{name}+{Path(adapter).name}"
        return cls(convert(model, adapter=adapter), name, threads)

    def _tokens(self, messages: Sequence[Message]) -> list[str]:
        ids = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True,
                                                 tokenize=True, return_dict=False)
        return self.tokenizer.convert_ids_to_tokens(ids)

    def _run(self, messages: Sequence[Message], max_tokens: int, temperature: float,
             stop: Sequence[str] | None) -> Iterator[str | Completion]:
        """Text pieces as tokens arrive (held back while a stop string may be forming), then
        the final Completion; stops early at a stop string, as OpenAI's API does."""
        prompt = self._tokens(messages)
        sampling = ({"sampling_topk": 1} if temperature <= 0 else
                    {"sampling_topk": 0, "sampling_temperature": temperature})
        new: list[int] = []
        text, sent, cut = "", 0, ""
        hold = max((len(s) for s in stop or ()), default=1) - 1
        with self._lock:
            steps = self.generator.generate_tokens(prompt, max_length=max_tokens, **sampling)
            try:
                for step in steps:
                    new.append(step.token_id)
                    text = self.tokenizer.decode(new, skip_special_tokens=True)
                    cut = cut_at_stop(text, stop)
                    if cut != text:
                        break
                    end = len(text) - hold
                    if text.endswith("\ufffd"):  # a character split across tokens: wait for the rest
                        end = min(end, len(text) - 1)
                    if end > sent:
                        yield text[sent:end]
                        sent = end
            finally:
                steps.close()  # stops CTranslate2's decoding loop when we leave early
        cut = cut_at_stop(text, stop)
        if len(cut) > sent:
            yield cut[sent:]
        yield finished(text, new, max_tokens, self.tokenizer.eos_token_id, stop, len(prompt),
                       self.name)

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        *_, final = self._run(messages, max_tokens, temperature, stop)
        return final

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str | Completion]:
        yield from self._run(messages, max_tokens, temperature, stop)
