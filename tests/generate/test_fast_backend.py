"""The fast backend (CTranslate2 int8): same answers as transformers on the shipped SmolLM2, the
LLM protocol's behaviours (stream, stop, length, usage), LoRA adapters merged in, and the
converted copy cached by the weights' hash."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ragortune.errors import ConfigError
from ragortune.generate import load_llm
from ragortune.generate.ct2 import CT2LLM, RECORD, convert
from ragortune.generate.llm import Completion
from ragortune.generate.local import LocalLLM
from ragortune.generate.prompts import Passage, rag_messages
from ragortune.models import _smollm2_converted_dir, load_causal_lm, weights_fingerprint

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Tell me about Paris in three sentences."}]
RAG = rag_messages("When do parcels ship?", [
    Passage("Parcels ship within two working days of the order.", "shipping.md"),
    Passage("Employees get 25 days of leave.", "leave.md")])
SCORED = "The Eiffel Tower is in Paris, the capital of France, and it was built in 1889."


@pytest.fixture(scope="session")
def fast() -> CT2LLM:
    llm = load_llm("smollm2")
    assert isinstance(llm, CT2LLM)
    return llm


def test_specs_choose_the_fast_backend_by_default_and_transformers_on_request(
        fast: CT2LLM, smollm2: LocalLLM) -> None:
    assert fast.name == "smollm2"
    assert isinstance(load_llm("ct2:smollm2"), CT2LLM)
    for spec in ("hf:smollm2", "transformers:smollm2"):
        assert isinstance(load_llm(spec), LocalLLM)


@pytest.mark.parametrize("messages", [QUESTION, RAG], ids=["closed-book", "rag"])
def test_fast_backend_gives_the_transformers_answer_with_the_same_usage(
        fast: CT2LLM, smollm2: LocalLLM, messages) -> None:
    """On these two prompts int8 and fp32 agree token for token; over the demo questions they
    agree less often (bench/answers.py measures how often)."""
    ours, theirs = fast.complete(messages, max_tokens=32), smollm2.complete(messages, max_tokens=32)
    assert ours.text == theirs.text
    assert (ours.prompt_tokens, ours.completion_tokens, ours.finish_reason) == (
        theirs.prompt_tokens, theirs.completion_tokens, theirs.finish_reason)


def test_greedy_answers_are_reproducible(fast: CT2LLM) -> None:
    assert fast.complete(STORY, max_tokens=40) == fast.complete(STORY, max_tokens=40)


def test_stream_yields_pieces_then_the_complete_answer(fast: CT2LLM) -> None:
    whole = fast.complete(QUESTION, max_tokens=20)
    *pieces, final = list(fast.stream(QUESTION, max_tokens=20))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert isinstance(final, Completion) and final == whole
    assert "".join(pieces).strip() == whole.text and "Paris" in whole.text


def test_generation_ends_at_a_stop_string_which_is_not_returned(fast: CT2LLM) -> None:
    whole = fast.complete(STORY, max_tokens=40, stop=[". "])
    *pieces, final = list(fast.stream(STORY, max_tokens=40, stop=[". "]))
    assert whole.text and ". " not in whole.text and whole.finish_reason == "stop"
    assert whole.completion_tokens < 40
    assert "".join(pieces).strip() == final.text == whole.text


def test_answer_cut_by_max_tokens_says_length(fast: CT2LLM) -> None:
    out = fast.complete([{"role": "user", "content": "Write a long story."}], max_tokens=3)
    assert out.completion_tokens == 3 and out.finish_reason == "length"


def test_converted_copy_is_reused_not_converted_again(fast: CT2LLM) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in fast.folder.iterdir()}
    assert convert() == fast.folder
    assert {p.name: p.stat().st_mtime_ns for p in fast.folder.iterdir()} == before
    assert weights_fingerprint()[:24] in fast.folder.name
    assert not [p for p in fast.folder.parent.iterdir() if p.name.startswith(f".{fast.folder.name}")]


def _strong_adapter(folder: Path) -> Path:
    """A LoRA adapter with random, deliberately large weights: it changes the model a lot."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"],
                        task_type="CAUSAL_LM", init_lora_weights=False)
    model = get_peft_model(load_causal_lm()[1], config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(6)
    model.save_pretrained(folder)
    return folder


def _hf_log_probs(llm: LocalLLM, ids: list[int]) -> np.ndarray:
    import torch

    with torch.inference_mode():
        logits = llm.model(torch.tensor([ids])).logits[0].log_softmax(-1)
    return np.array([float(logits[i, ids[i + 1]]) for i in range(len(ids) - 1)])


def _ct2_log_probs(llm: CT2LLM, ids: list[int]) -> np.ndarray:
    tokens = llm.tokenizer.convert_ids_to_tokens(ids)
    return np.array(llm.generator.score_batch([tokens])[0].log_probs)


def test_adapter_is_merged_into_the_fast_copy(fast: CT2LLM, smollm2: LocalLLM, tmp_path,
                                              monkeypatch) -> None:
    """The fast copy of base + adapter scores text as transformers with the adapter does,
    and unlike the base model; it gets its own cache folder (keyed by the adapter's hash)."""
    base_f32 = _smollm2_converted_dir()
    monkeypatch.setenv("RAGORTUNE_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    if base_f32.is_dir():  # reuse the de-quantised SmolLM2 instead of re-parsing the GGUF
        os.symlink(base_f32, tmp_path / "cache" / base_f32.name)
    adapter = str(_strong_adapter(tmp_path / "adapter"))
    tuned = load_llm("smollm2", adapter=adapter)
    reference = load_llm("hf:smollm2", adapter=adapter)
    assert isinstance(tuned, CT2LLM) and tuned.name == "smollm2+adapter"
    assert tuned.folder != fast.folder and (tuned.folder / RECORD).is_file()

    ids = smollm2.tokenizer(SCORED)["input_ids"]
    ours, theirs = _ct2_log_probs(tuned, ids), _hf_log_probs(reference, ids)
    base = _hf_log_probs(smollm2, ids)
    assert np.abs(ours - theirs).mean() < 1.0  # int8 noise, measured 0.19 nats per token
    assert np.abs(ours - base).mean() > 5 * np.abs(ours - theirs).mean()


def test_a_changed_adapter_gets_a_new_fingerprint(tmp_path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"one")
    first = weights_fingerprint(adapter=str(adapter))
    (adapter / "adapter_model.safetensors").write_bytes(b"two")
    assert weights_fingerprint(adapter=str(adapter)) not in (first, weights_fingerprint())


def test_float32_copy_answers_word_for_word_as_transformers(
        smollm2: LocalLLM, monkeypatch) -> None:
    """The quantization switch users take when the answers must match transformers' exactly
    (on the demo's 39 questions int8 matched 17, float32 all 39: bench/answers.py)."""
    monkeypatch.setenv("RAGORTUNE_CT2_QUANTIZATION", "float32")
    exact = load_llm("smollm2")
    assert "float32" in exact.folder.name
    assert exact.complete(STORY, max_tokens=40).text == smollm2.complete(STORY, max_tokens=40).text
    monkeypatch.setenv("RAGORTUNE_CT2_QUANTIZATION", "fp8")
    with pytest.raises(ConfigError, match="RAGORTUNE_CT2_QUANTIZATION='fp8' is not one of"):
        load_llm("smollm2")
