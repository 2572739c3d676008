from __future__ import annotations

import pytest

from ragortune.tune.tokens import (
    ChatTokenizer,
    billed_tokens,
    default_epochs,
    encode_chat,
    openai_spec,
)

CHAT = [
    {"role": "system", "content": "You answer questions about ACME."},
    {"role": "user", "content": "What port does Orbit use?"},
    {"role": "assistant", "content": "Port 8443."},
    {"role": "user", "content": "And the staging port?"},
    {"role": "assistant", "content": "Port 9443."},
]


@pytest.mark.parametrize(
    ("n", "epochs"),
    [(1, 25), (4, 25), (10, 10), (33, 3), (34, 3), (50, 3), (8333, 3), (8334, 2), (12500, 2), (30000, 1)],
)
def test_default_epochs_follow_the_openai_rule(n, epochs):
    assert default_epochs(n) == epochs


def test_billed_tokens_cap_each_example_at_the_limit_and_multiply_by_epochs():
    assert billed_tokens([10, 20, 500], 3, max_tokens=100) == 3 * (10 + 20 + 100)


def test_gpt4o_family_counts_with_o200k_and_older_models_with_cl100k():
    assert openai_spec("gpt-4o-mini-2024-07-18") == ("o200k_base", 65_536)
    assert openai_spec("ft:gpt-4o-mini-2024-07-18:acme::abc123")[0] == "o200k_base"
    assert openai_spec("gpt-4.1-nano-2025-04-14")[0] == "o200k_base"
    assert openai_spec("gpt-3.5-turbo-0125") == ("cl100k_base", 16_385)
    assert openai_spec("smollm2") is None


def test_openai_count_adds_the_chat_framing_to_the_text_tokens():
    import bpe_openai

    enc = bpe_openai.get_encoding("o200k_base")
    counter = ChatTokenizer.for_model("gpt-4o-mini")
    total, assistant = counter.count(CHAT)
    text = sum(len(enc.encode(m["content"])) + len(enc.encode(m["role"])) for m in CHAT)
    assert total == text + 3 * len(CHAT) + 3
    assert assistant == len(enc.encode("Port 8443.")) + len(enc.encode("Port 9443."))


def test_local_model_trains_only_on_assistant_replies_and_their_end_of_turn(smol_tokenizer):
    encoded = encode_chat(smol_tokenizer, CHAT, max_tokens=None)
    trained = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != -100]
    text = smol_tokenizer.decode(trained)
    assert text.replace("\n", "") == "Port 8443.<|im_end|>Port 9443.<|im_end|>"
    assert not encoded.truncated


def test_local_count_matches_what_training_encodes(smol_tokenizer):
    counter = ChatTokenizer.from_hf(smol_tokenizer, "smollm2", max_tokens=2048)
    encoded = encode_chat(smol_tokenizer, CHAT, max_tokens=None)
    assert counter.count(CHAT) == (len(encoded.input_ids), encoded.n_target)


def test_long_examples_are_cut_to_the_limit(smol_tokenizer):
    long = [{"role": "user", "content": "word " * 500}, {"role": "assistant", "content": "ok"}]
    encoded = encode_chat(smol_tokenizer, long, max_tokens=64)
    assert encoded.truncated and len(encoded.input_ids) == 64 and encoded.n_target == 0
