"""Question to answer: gating, abstention without an LLM, citations, usage."""

from __future__ import annotations

import json

import pytest

from ragortune import rag
from ragortune.errors import InputError
from ragortune.generate.llm import Completion
from ragortune.generate.local import LocalLLM
from ragortune.kb import KnowledgeBase
from ragortune.retrieve import search


def test_no_chunk_above_threshold_abstains_without_calling_the_llm(small_kb: KnowledgeBase) -> None:
    # llm=None: any attempt to generate would raise, so an answer proves the LLM was skipped.
    answer = rag.answer(small_kb, None, "How tall is Mount Everest?", min_score=0.5)
    assert answer.abstained and answer.abstain_reason == "gate"
    assert answer.text == "Not in the knowledge base."
    assert answer.model is None and answer.usage.prompt_tokens == 0
    assert answer.usage.embedding_tokens > 0 and answer.sources == ()


def test_one_chunk_passing_the_gate_brings_the_whole_top_k_as_context(
        small_kb: KnowledgeBase) -> None:
    best = max(h.similarity for h in search(small_kb, "When do access tokens expire?", k=3))
    context = rag.retrieve_context(small_kb, "When do access tokens expire?", k=3,
                                   min_score=best - 1e-6)
    assert len(context.hits) == 3 and min(h.similarity for h in context.hits) < best
    assert not rag.retrieve_context(small_kb, "When do access tokens expire?", k=3,
                                    min_score=best + 1e-6).hits


def test_gate_uses_the_kbs_calibrated_threshold_when_none_is_given(small_kb: KnowledgeBase) -> None:
    small_kb.settings.min_score = 0.99
    try:
        assert rag.answer(small_kb, None, "When do access tokens expire?").abstained
    finally:
        small_kb.settings.min_score = None


def test_answer_is_grounded_in_the_kb_with_citations_and_usage(
        small_kb: KnowledgeBase, smollm2: LocalLLM) -> None:
    answer = rag.answer(small_kb, smollm2, "How many requests per minute may an API key send?",
                        min_score=0.3, k=3)
    assert "300" in answer.text and answer.grounded and not answer.abstained
    assert answer.sources[0].source.endswith("api.md")
    assert answer.sources[0].heading.endswith("Rate limits")
    for citation in answer.citations:
        assert citation == answer.sources[citation.n - 1]
    u = answer.usage
    assert u.embedding_tokens > 0 and u.prompt_tokens > 50 and u.completion_tokens > 0
    assert u.embed_s > 0 and u.retrieve_s > 0 and u.generate_s > 0
    assert json.loads(json.dumps(answer.to_json()))["usage"]["seconds"]["total"] > 0


def test_streamed_answer_ends_with_the_checked_answer(
        small_kb: KnowledgeBase, smollm2: LocalLLM) -> None:
    events = list(rag.stream_answer(small_kb, smollm2, "Which warehouse do orders ship from?",
                                    min_score=0.3, k=3))
    final = events[-1]
    assert isinstance(final, rag.Answer) and "Rotterdam" in final.text
    assert all(isinstance(e, str) for e in events[:-1]) and len(events) > 2


def test_nothing_found_can_fall_back_to_the_models_own_answer_clearly_marked(
        small_kb: KnowledgeBase, smollm2: LocalLLM) -> None:
    answer = rag.answer(small_kb, smollm2, "What is the capital of France?", min_score=0.9,
                        on_empty="model", max_tokens=16)
    assert answer.text.startswith(rag.FALLBACK_MARK) and not answer.grounded
    assert not answer.abstained and answer.citations == () and answer.usage.completion_tokens > 0


def _context(kb: KnowledgeBase) -> rag.Context:
    return rag.retrieve_context(kb, "When do access tokens expire?", k=2, min_score=0.0)


def test_citations_to_no_retrieved_chunk_are_dropped_and_flagged(small_kb: KnowledgeBase) -> None:
    completion = Completion("Tokens expire after 45 minutes [2][7], see [1, 9].", 10, 5, "m")
    answer = rag.finish(_context(small_kb), completion, 0.1)
    assert [c.n for c in answer.citations] == [2, 1]
    assert answer.dropped_citations == (7, 9) and not answer.citations_inferred
    assert answer.text == "Tokens expire after 45 minutes [2], see [1]."


def test_answer_without_markers_is_attributed_to_the_passage_that_supports_it(
        small_kb: KnowledgeBase) -> None:
    context = _context(small_kb)
    answer = rag.finish(context, Completion("They expire after 45 minutes.", 10, 6, "m"), 0.1)
    assert answer.citations_inferred and len(answer.citations) == 1
    assert "45 minutes" in answer.citations[0].text


def test_model_saying_not_in_the_knowledge_base_counts_as_abstention(small_kb: KnowledgeBase) -> None:
    answer = rag.finish(_context(small_kb), Completion("Not in the knowledge base.", 10, 6, "m"), 0.1)
    assert answer.abstained and answer.abstain_reason == "model" and not answer.grounded


def test_empty_question_is_refused(small_kb: KnowledgeBase) -> None:
    with pytest.raises(InputError, match="empty"):
        rag.answer(small_kb, None, "   ")
