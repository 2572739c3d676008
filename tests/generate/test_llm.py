"""The LLM backends: shipped SmolLM2 through transformers, spec parsing, clear errors."""

from __future__ import annotations

import socket

import pytest
from server.openai_endpoint import MODEL, OpenAIEndpoint

from ragortune.errors import ConfigError, RagortuneError
from ragortune.generate import load_llm
from ragortune.generate.llm import Completion
from ragortune.generate.local import LocalLLM
from ragortune.generate.openai_compat import OpenAICompatLLM
from ragortune.generate.prompts import Passage, rag_messages
from ragortune.models import load_causal_lm, shipped_smollm2_dir

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_shipped_smollm2_is_found_without_importing_its_package() -> None:
    assert (shipped_smollm2_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()


def test_shipped_smollm2_answers_with_token_usage(smollm2: LocalLLM) -> None:
    out = smollm2.complete(QUESTION, max_tokens=20)
    assert "Paris" in out.text
    assert out.prompt_tokens > 5 and 0 < out.completion_tokens <= 20
    assert out.model == "smollm2"


def test_greedy_stream_yields_pieces_then_the_same_answer_with_usage(smollm2: LocalLLM) -> None:
    whole = smollm2.complete(QUESTION, max_tokens=20)
    events = list(smollm2.stream(QUESTION, max_tokens=20))
    pieces, final = events[:-1], events[-1]
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert isinstance(final, Completion)
    assert "".join(pieces).strip() == final.text == whole.text
    assert (final.prompt_tokens, final.completion_tokens) == (
        whole.prompt_tokens, whole.completion_tokens)


def test_generation_ends_at_a_stop_string_which_is_not_returned(smollm2: LocalLLM) -> None:
    story = [{"role": "user", "content": "Tell me about Paris in three sentences."}]
    whole = smollm2.complete(story, max_tokens=40, stop=[". "])
    *pieces, final = list(smollm2.stream(story, max_tokens=40, stop=[". "]))
    assert whole.text and ". " not in whole.text and whole.finish_reason == "stop"
    assert whole.completion_tokens < 40
    assert "".join(pieces).strip() == final.text == whole.text


def test_answer_cut_by_max_tokens_says_length(smollm2: LocalLLM) -> None:
    out = smollm2.complete([{"role": "user", "content": "Write a long story."}], max_tokens=3)
    assert out.completion_tokens == 3 and out.finish_reason == "length"


def test_lora_adapter_on_the_shipped_model_is_applied(smollm2: LocalLLM, tmp_path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    base = load_causal_lm()[1]
    config = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")
    tokenizer, model = load_causal_lm("smollm2", adapter=str(tmp_path / "adapter"))
    assert isinstance(model, PeftModel)
    assert tokenizer.chat_template


def test_adapter_folder_without_config_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="adapter_config.json"):
        load_causal_lm(adapter=str(tmp_path))


def test_missing_model_path_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="neither a model folder"):
        load_causal_lm(str(tmp_path / "nope"))


def test_hub_id_not_downloaded_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="already downloaded"):
        load_llm("hf:ragortune-test/no-such-model")


@pytest.mark.parametrize("spec", ["gpt", "hf:", "openai:", "ollama:llama3"])
def test_unknown_llm_spec_is_refused_with_the_forms_allowed(spec: str) -> None:
    with pytest.raises(ConfigError, match="smollm2"):
        load_llm(spec)


def test_openai_spec_without_key_or_base_url_is_refused(monkeypatch) -> None:
    for var in ("RAGORTUNE_LLM_BASE_URL", "RAGORTUNE_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="RAGORTUNE_LLM_API_KEY"):
        load_llm("openai:gpt-4o-mini")


def test_unreachable_openai_compatible_endpoint_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OpenAICompatLLM("m", f"http://127.0.0.1:{port}/v1", timeout=5, max_retries=1)
    with pytest.raises(ConfigError, match="unreachable .*2 attempts.*RAGORTUNE_LLM_BASE_URL"):
        llm.complete(QUESTION)
    with pytest.raises(ConfigError, match="unreachable"):
        list(llm.stream(QUESTION))


@pytest.fixture
def endpoint():
    with OpenAIEndpoint(api_key="sk-test") as running:
        yield running


def test_openai_compatible_llm_sends_the_request_and_reports_the_servers_usage(endpoint) -> None:
    llm = OpenAICompatLLM(MODEL, endpoint.url, "sk-test")
    done = llm.complete(QUESTION, max_tokens=30, temperature=0.4, stop=["\n\n"])
    assert done.text == "echo: What is the capital of France?"
    assert (done.prompt_tokens, done.completion_tokens, done.model) == (6, 7, MODEL)
    sent = endpoint.bodies("/v1/chat/completions")[-1]
    assert (sent["max_tokens"], sent["temperature"], sent["stop"]) == (30, 0.4, ["\n\n"])
    *pieces, final = list(llm.stream(QUESTION, max_tokens=30))
    assert len(pieces) == 7 and "".join(pieces) == final.text == done.text
    assert (final.prompt_tokens, final.completion_tokens, final.finish_reason) == (6, 7, "stop")


def test_openai_compatible_llm_retries_a_failing_endpoint_then_answers(endpoint) -> None:
    llm = OpenAICompatLLM(MODEL, endpoint.url, "sk-test")
    endpoint.fail_next(503)
    assert llm.complete(QUESTION).text.startswith("echo:")
    endpoint.fail_next(429, 500)
    assert list(llm.stream(QUESTION))[-1].text.startswith("echo:")
    assert len(endpoint.bodies("/v1/chat/completions")) == 2 + 3


def test_an_endpoint_failing_past_the_retries_is_one_clear_error(endpoint) -> None:
    endpoint.fail_next(503, 503, 503)
    with pytest.raises(RagortuneError, match=r"HTTP 503: scripted failure 503 \(3 attempts\)"):
        OpenAICompatLLM(MODEL, endpoint.url, "sk-test").complete(QUESTION)


def test_a_stalled_endpoint_times_out_with_a_clear_error(endpoint) -> None:
    endpoint.delay = 1.0
    llm = OpenAICompatLLM(MODEL, endpoint.url, "sk-test", timeout=0.2, max_retries=0)
    with pytest.raises(ConfigError, match=r"did not answer within 0.2 s \(1 attempt\)"):
        llm.complete(QUESTION)


@pytest.mark.parametrize("model, path, key, error", [
    (MODEL, "/v1", "wrong", r"HTTP 401: Incorrect API key provided; set RAGORTUNE_LLM_API_KEY"),
    ("gpt-nope", "/v1", "sk-test", (r"HTTP 404: The model 'gpt-nope' does not exist; check "
                                    r"that it serves model 'gpt-nope'")),
    (MODEL, "", "sk-test", r"HTTP 404: .*404 Not Found.*base URL ends with /v1"),
])
def test_endpoint_errors_name_the_cause_and_the_fix(endpoint, model, path, key, error) -> None:
    llm = OpenAICompatLLM(model, endpoint.root + path, key)
    with pytest.raises(ConfigError, match=error):
        llm.complete(QUESTION)
    with pytest.raises(ConfigError, match=error):
        list(llm.stream(QUESTION))


def test_rag_prompt_numbers_passages_by_rank_with_the_best_next_to_the_question() -> None:
    messages = rag_messages("How many days?", [Passage("Ten days.", "a.md", "Leave"),
                                                Passage("Nope.", "b.md")])
    user = messages[-1]["content"]
    assert "[1] Ten days." in user and "[2] Nope." in user
    assert user.index("[2]") < user.index("[1]") < user.index("How many days?")
