"""Fixtures for the fine-tuning tests: the shipped tokenizer and model loaded once, a tiny
random-weights Llama with the same tokenizer for fast training runs, and chat data files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FACTS = [
    ("What is the code name of project Falcon's database?", "Project Falcon's database is code-named Heron."),
    ("Who approves travel expenses over 500 euros?", "The finance director, Ana Ruiz, approves them."),
    ("What port does the Orbit API listen on?", "The Orbit API listens on port 8443."),
    ("How many vacation days do new employees get?", "New employees get 27 vacation days a year."),
    ("When is the quarterly security review?", "On the first Tuesday of each quarter."),
    ("What is the on-call escalation number?", "The on-call escalation number is extension 4417."),
    ("Which team owns the billing service?", "The Ledger team owns the billing service."),
    ("What is the maximum upload size in Orbit?", "The maximum upload size in Orbit is 250 MB."),
]


def write_chat(path: Path, facts=FACTS, system: str | None = None) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for q, a in facts:
            messages = [{"role": "system", "content": system}] if system else []
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            fh.write(json.dumps({"messages": messages}) + "\n")
    return path


@pytest.fixture(scope="session")
def smol_tokenizer():
    """The shipped SmolLM2 tokenizer (no weights)."""
    from ragortune.tune.tokens import load_tokenizer

    return load_tokenizer(None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer) -> Path:
    """A 2-layer Llama with random weights and the SmolLM2 tokenizer, saved as a local model
    folder: the same code path as any local model, at a fraction of the cost per step."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(smol_tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=smol_tokenizer.bos_token_id,
        eos_token_id=smol_tokenizer.eos_token_id, pad_token_id=smol_tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def chat_file(tmp_path) -> Path:
    return write_chat(tmp_path / "train.jsonl")
