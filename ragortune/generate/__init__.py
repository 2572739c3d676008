"""Generators behind one `LLM` protocol, picked by a spec string (the `llm` setting):
  `smollm2`                      the shipped SmolLM2-135M-Instruct (default, offline), run by
                                 the fast backend: CTranslate2 int8, converted once and cached
  `ct2:<hub id | folder | .gguf>` any transformers causal LM CTranslate2 converts, run the same way
  `hf:<hub id | folder | .gguf>` any transformers causal LM run by transformers (fp32; slower,
                                 loads anything transformers loads); `hf:smollm2` = shipped one;
                                 `transformers:` is the same as `hf:`
  `llamacpp[:<file.gguf>]`       llama-cpp-python (optional extra); shipped SmolLM2 by default
  `openai:<model>`               any OpenAI-compatible endpoint (RAGORTUNE_LLM_BASE_URL,
                                 RAGORTUNE_LLM_API_KEY; OPENAI_API_KEY for OpenAI's own URL only)
"""

from __future__ import annotations

import os

from ragortune.errors import ConfigError
from ragortune.generate.llm import LLM, Completion, Message

SPEC_HELP = ("use 'smollm2', 'ct2:<model id or path>', 'hf:<model id or path>', "
             "'llamacpp[:<file.gguf>]' or 'openai:<model>'")
TRANSFORMERS_KINDS = ("hf", "transformers")


def load_llm(
    spec: str | None = "smollm2", *, adapter: str | None = None, base_url: str | None = None,
    api_key: str | None = None,
) -> LLM:
    """Build the backend a spec names; heavy models load here, once, and are passed around."""
    spec = (spec or "smollm2").strip()
    kind, _, arg = spec.partition(":")
    if adapter is not None and kind not in ("smollm2", "ct2", *TRANSFORMERS_KINDS):
        raise ConfigError(f"--adapter works with local models (smollm2, ct2:, hf:), not '{spec}'")
    if spec == "smollm2" or (kind == "ct2" and arg):
        from ragortune.generate.ct2 import CT2LLM

        return CT2LLM.load(arg or None, adapter=adapter)
    if kind in TRANSFORMERS_KINDS and arg:
        from ragortune.generate.local import LocalLLM

        return LocalLLM.load(arg, adapter=adapter)
    if kind == "llamacpp":
        from ragortune.generate.llamacpp import LlamaCppLLM
        from ragortune.models import SMOLLM2_GGUF, shipped_smollm2_dir

        return LlamaCppLLM(arg or shipped_smollm2_dir() / SMOLLM2_GGUF)
    if kind == "openai" and arg:
        from ragortune.embed import api_key_for
        from ragortune.generate.openai_compat import DEFAULT_BASE_URL, OpenAICompatLLM

        url = base_url or os.environ.get("RAGORTUNE_LLM_BASE_URL") or DEFAULT_BASE_URL
        key = api_key_for(url, "RAGORTUNE_LLM_API_KEY", api_key)
        if url == DEFAULT_BASE_URL and not key:
            raise ConfigError(
                f"--llm {spec} talks to api.openai.com and needs a key: set RAGORTUNE_LLM_API_KEY, "
                "or point RAGORTUNE_LLM_BASE_URL at your own server (vLLM, Ollama, llama.cpp)"
            )
        return OpenAICompatLLM(arg, url, key)
    raise ConfigError(f"unknown LLM '{spec}': {SPEC_HELP}")


__all__ = ["LLM", "Completion", "Message", "load_llm"]
