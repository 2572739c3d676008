"""Optional llama.cpp backend (`pip install llama-cpp-python`): about 3x faster than transformers
for SmolLM2 on CPU. Never required; imported only when a `llamacpp:` spec asks for it.

The default build crashes on some CPUs; build with
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragortune.errors import ConfigError
from ragortune.generate.llm import Completion, Message


class LlamaCppLLM:
    """A GGUF file run by llama-cpp-python; chat template taken from the file."""

    def __init__(self, gguf_path: str | Path, n_ctx: int = 2048, n_threads: int | None = None):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigError(
                "the llamacpp backend needs llama-cpp-python: `pip install llama-cpp-python` "
                "(see docs/answers.md for the build flags), or use --llm smollm2"
            ) from None
        path = Path(gguf_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"GGUF file {path} not found: give the path of a .gguf model")
        self.name = f"llamacpp:{path.name}"
        self._llama: Any = Llama(str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        self._lock = threading.Lock()

    def complete(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        with self._lock:
            out = self._llama.create_chat_completion(
                messages=list(messages), max_tokens=max_tokens, temperature=temperature,
                stop=list(stop or []),
            )
        usage = out.get("usage") or {}
        choice = out["choices"][0]
        return Completion(
            (choice["message"].get("content") or "").strip(), int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)), self.name, choice.get("finish_reason") or "stop",
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str | Completion]:
        pieces: list[str] = []
        finish = "stop"
        with self._lock:
            for chunk in self._llama.create_chat_completion(
                messages=list(messages), max_tokens=max_tokens, temperature=temperature, stream=True,
                stop=list(stop or []),
            ):
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                piece = choice.get("delta", {}).get("content")
                if piece:
                    pieces.append(piece)
                    yield piece
        text = "".join(pieces).strip()
        # llama-cpp-python's stream carries no usage: count with the model's tokenizer
        # (approximate for the prompt: the chat template's own tokens are not included).
        prompt = "".join(m["content"] for m in messages).encode()
        yield Completion(
            text, len(self._llama.tokenize(prompt)), len(self._llama.tokenize(text.encode(), add_bos=False)),
            self.name, finish,
        )
