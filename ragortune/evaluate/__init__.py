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
    normalize_answer,
    percentiles,
    score_answer,
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
from ragortune.evaluate.metrics import (
    DEFAULT_KS,
    RetrievalMetrics,
    evaluate_rankings,
    metric_names,
    rank_documents,
)

__all__ = [
    "ABSTENTION_PHRASE", "AnswerScore", "abstention_scores", "contains_gold", "exact_match",
    "is_abstention", "normalize_answer", "percentiles", "score_answer", "token_f1",
    "Dataset", "Document", "Query", "load_dataset", "load_qrels", "load_questions",
    "DEFAULT_KS", "RetrievalMetrics", "evaluate_rankings", "metric_names", "rank_documents",
]
