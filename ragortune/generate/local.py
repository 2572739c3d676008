"""Local generation with transformers: the shipped SmolLM2, any Hugging Face id or local path
(loaded through `ragortune.models`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragortune.generate.llm import Completion, Message, cut_at_stop, finished
from ragortune.models import SMOLLM2, load_causal_lm


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
        return finished(text, new.tolist(), max_tokens, self.tokenizer.eos_token_id, stop,
                        n_prompt, self.name)

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
            except BaseException as exc:
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
