"""Token counts with the target model's own tokenizer, and the provider's epoch rule.

Two kinds of target: an OpenAI model (counted with `bpe-openai`, the way OpenAI counts chat
fine-tuning examples) and a Hugging Face model (counted with its tokenizer and chat template,
exactly as `tune train` encodes the example, so the validator and the trainer agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragortune.errors import ConfigError

# Per-example training context of OpenAI fine-tunable models: longer examples are truncated.
# Source: OpenAI fine-tuning guide, "token limits" (checked 2026-11).
OPENAI_MODELS: tuple[tuple[str, str, int], ...] = (
    # (model prefix, encoding, tokens per training example)
    ("gpt-4.1", "o200k_base", 65_536),
    ("gpt-4o", "o200k_base", 65_536),
    ("gpt-5", "o200k_base", 65_536),
    ("o4-mini", "o200k_base", 65_536),
    ("o3", "o200k_base", 65_536),
    ("o1", "o200k_base", 65_536),
    ("gpt-3.5-turbo", "cl100k_base", 16_385),
    ("gpt-4", "cl100k_base", 8_192),
    ("babbage-002", "cl100k_base", 16_384),
    ("davinci-002", "cl100k_base", 16_384),
)

# OpenAI's default-epoch rule: aim for 3 epochs, but at least 100 and at most 25,000 example passes.
TARGET_EPOCHS = 3
MIN_EXAMPLE_PASSES = 100
MAX_EXAMPLE_PASSES = 25_000
MIN_EPOCHS = 1
MAX_EPOCHS = 25

# OpenAI's chat framing: every message costs a few tokens beyond its text, and the reply is primed.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3

DEFAULT_LOCAL_MAX_TOKENS = 2048


@dataclass(frozen=True)
class EncodedChat:
    """One training example as token ids; `labels` is -100 wherever the model is not trained."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def n_target(self) -> int:
        return sum(1 for x in self.labels if x != -100)


def openai_base_model(model: str) -> str:
    """`ft:gpt-4o-mini-2024-07-18:org::id` -> `gpt-4o-mini-2024-07-18` (continued fine-tuning)."""
    return model.split(":")[1] if model.startswith("ft:") else model


def openai_spec(model: str) -> tuple[str, int] | None:
    """(encoding, per-example token limit) for an OpenAI model name, None if not an OpenAI model."""
    base = openai_base_model(model)
    for prefix, encoding, limit in OPENAI_MODELS:
        if base == prefix or base.startswith(prefix + "-"):
            return encoding, limit
    return None


def default_epochs(n_examples: int) -> int:
    """Epochs OpenAI picks when none are given: 3, raised for small files, lowered for huge ones."""
    if n_examples <= 0:
        return 0
    if n_examples * TARGET_EPOCHS < MIN_EXAMPLE_PASSES:
        # floor division, as in OpenAI's own estimate (cookbook "chat_finetuning_data_prep")
        return min(MAX_EPOCHS, MIN_EXAMPLE_PASSES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_EXAMPLE_PASSES:
        return max(MIN_EPOCHS, MAX_EXAMPLE_PASSES // n_examples)
    return TARGET_EPOCHS


def billed_tokens(tokens_per_example: Sequence[int], n_epochs: int, max_tokens: int) -> int:
    """Tokens a provider bills: each example up to its limit (the rest is truncated), per epoch."""
    return n_epochs * sum(min(n, max_tokens) for n in tokens_per_example)


class ChatTokenizer:
    """Counts (and for local models encodes) chat examples with the target model's tokenizer."""

    def __init__(
        self, model: str, *, kind: str, max_tokens: int, encoding: Any = None, hf: Any = None
    ) -> None:
        self.model = model
        self.kind = kind  # "openai" or "hf"
        self.max_tokens = max_tokens
        self._encoding = encoding
        self.hf = hf

    @classmethod
    def for_model(cls, model: str | None, *, max_tokens: int | None = None) -> ChatTokenizer:
        """OpenAI names use bpe-openai (o200k for the gpt-4o family); anything else loads its
        Hugging Face tokenizer (None or "smollm2" = the shipped SmolLM2)."""
        spec = openai_spec(model) if model else None
        if spec is not None:
            import bpe_openai

            encoding, limit = spec
            return cls(
                model or "",
                kind="openai",
                max_tokens=max_tokens or limit,
                encoding=bpe_openai.get_encoding(encoding),
            )
        return cls(
            model or "smollm2",
            kind="hf",
            max_tokens=max_tokens or DEFAULT_LOCAL_MAX_TOKENS,
            hf=load_tokenizer(model),
        )

    @classmethod
    def from_hf(cls, tokenizer: Any, model: str, max_tokens: int) -> ChatTokenizer:
        """Wrap a tokenizer already loaded (the trainer has one from `load_causal_lm`)."""
        return cls(model, kind="hf", max_tokens=max_tokens, hf=tokenizer)

    def count(self, messages: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """(tokens in the whole example, tokens the model is trained on), before truncation."""
        if self.kind == "openai":
            total = TOKENS_REPLY_PRIMING
            assistant = 0
            for message in messages:
                total += TOKENS_PER_MESSAGE
                for key, value in message.items():
                    if key == "content":
                        value = message_text(value)
                    if isinstance(value, str) and key != "weight":
                        n = self._count_openai(value)
                        total += n
                        if key == "content" and message.get("role") == "assistant":
                            assistant += n
                    if key == "name":
                        total += TOKENS_PER_NAME
            return total, assistant
        encoded = encode_chat(self.hf, messages, max_tokens=None)
        return len(encoded.input_ids), encoded.n_target


    def _count_openai(self, text: str) -> int:
        """bpe-openai refuses very long inputs ("too long to encode safely"): count pieces cut
        just before a space, where its pre-tokenizer cuts anyway, so the sum is exact."""
        pieces, start = [], 0
        while len(text) - start > OPENAI_PIECE_CHARS:
            cut = text.rfind(" ", start + 1, start + OPENAI_PIECE_CHARS)
            cut = cut if cut > start else start + OPENAI_PIECE_CHARS
            pieces.append(text[start:cut])
            start = cut
        pieces.append(text[start:])
        return sum(len(self._encoding.encode_ordinary(piece)) for piece in pieces)


OPENAI_PIECE_CHARS = 50_000


def message_text(content: Any) -> str:
    """A message's text: `content` as a string, or the text parts of a list of parts
    (`[{"type": "text", "text": ...}]`, the other form OpenAI's chat format allows)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict)
                       and part.get("type") == "text" and isinstance(part.get("text"), str))
    return ""


def load_tokenizer(model: str | None) -> Any:
    """The tokenizer alone (token counting needs no weights): shipped SmolLM2, folder, .gguf, or id."""
    from transformers import AutoTokenizer

    from ragortune.models import SMOLLM2, SMOLLM2_GGUF, shipped_smollm2_dir

    try:
        if model is None or model == SMOLLM2:
            tok = AutoTokenizer.from_pretrained(shipped_smollm2_dir(), gguf_file=SMOLLM2_GGUF)
        elif Path(model).expanduser().suffix == ".gguf":
            path = Path(model).expanduser()
            tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        elif Path(model).expanduser().is_dir():
            tok = AutoTokenizer.from_pretrained(Path(model).expanduser())
        else:
            tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load the tokenizer of {model!r} ({str(exc).splitlines()[0]}); give an OpenAI "
            "model name, a local model folder or .gguf file, or a Hugging Face id already downloaded"
        ) from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _render(tokenizer: Any, messages: Sequence[dict[str, Any]], *, prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=prompt
    )


def encode_chat(
    tokenizer: Any, messages: Sequence[dict[str, Any]], *, max_tokens: int | None
) -> EncodedChat:
    """Token ids of one chat example with labels only on the assistant replies (their end-of-turn
    token included, so the model learns to stop); cut to `max_tokens` when given.

    Assistant spans are found by rendering the conversation up to each reply with the model's
    own chat template, so any template that renders a prefix of the chat as a prefix of the
    text works; the rest raise ConfigError rather than train on the wrong tokens.
    """
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template: "
            "fine-tune an instruction (chat) model, or one whose tokenizer defines a chat template"
        )
    messages = [{"role": m["role"], "content": message_text(m.get("content"))} for m in messages]
    text = _render(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_render(tokenizer, messages[:i], prompt=True)) if i else 0
        upto = _render(tokenizer, messages[: i + 1])
        if not text.startswith(upto):
            raise ConfigError(
                "this model's chat template does not render a conversation prefix as a text "
                "prefix, so assistant turns cannot be located: train on single-turn examples"
            )
        spans.append((start, len(upto)))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    labels = [-100] * len(ids)
    span_index = 0
    for t, (begin, _end) in enumerate(enc["offset_mapping"]):
        while span_index < len(spans) and begin >= spans[span_index][1]:
            span_index += 1
        if span_index < len(spans) and spans[span_index][0] <= begin:
            labels[t] = ids[t]
    truncated = max_tokens is not None and len(ids) > max_tokens
    if truncated:
        ids, labels = ids[:max_tokens], labels[:max_tokens]
    return EncodedChat(ids, labels, truncated)
