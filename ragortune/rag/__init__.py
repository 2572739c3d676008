"""Answering over a knowledge base with citations (`answer`), and the measured gate (`calibrate`)."""

from ragortune.rag.answer import (
    CONTEXT_K,
    FALLBACK_MARK,
    MAX_TOKENS,
    STOP,
    Answer,
    Citation,
    Context,
    Usage,
    answer,
    citation_json,
    finish,
    generate,
    messages_for,
    needs_llm,
    retrieve_context,
    stream_answer,
)

__all__ = ["CONTEXT_K", "FALLBACK_MARK", "MAX_TOKENS", "STOP", "Answer", "Citation", "Context",
           "Usage", "answer", "citation_json", "finish", "generate", "messages_for", "needs_llm",
           "retrieve_context", "stream_answer"]
