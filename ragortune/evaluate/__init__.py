"""Evaluation: BEIR data sets, retrieval metrics and answer metrics.

The modules are plain functions over plain data; the CLI (`ragortune eval ...`) calls them.
"""

from ragortune.evaluate.answer_metrics import (
    ABSTENTION_PHRASE,
    AnswerScore,
    abstention_scores,
    contains_gold,
    exact_match,
    is_abstention,
    matches_gold,
    normalize_answer,
    percentiles,
    score_answer,
    strip_citations,
    token_f1,
)
from ragortune.evaluate.datasets import (
    Dataset,
    Document,
    Query,
    load_dataset,
    load_qrels,
    load_questions,
)
from ragortune.evaluate.retrieval_metrics import (
    DEFAULT_KS,
    RetrievalMetrics,
    evaluate_rankings,
    metric_names,
    rank_documents,
)

__all__ = [
    "ABSTENTION_PHRASE",
    "DEFAULT_KS",
    "AnswerScore",
    "Dataset",
    "Document",
    "Query",
    "RetrievalMetrics",
    "abstention_scores",
    "contains_gold",
    "evaluate_rankings",
    "exact_match",
    "is_abstention",
    "load_dataset",
    "load_qrels",
    "load_questions",
    "matches_gold",
    "metric_names",
    "normalize_answer",
    "percentiles",
    "rank_documents",
    "score_answer",
    "strip_citations",
    "token_f1",
]
