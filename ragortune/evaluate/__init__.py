"""Evaluation: BEIR data sets, retrieval metrics and answer metrics.

The modules are plain functions over plain data; the CLI (`ragortune eval ...`) calls them.
Questions are `ragortune.questions.Question`; answers are judged by `ragortune.judge`.
"""

from ragortune.evaluate.answer_metrics import (
    AnswerScore,
    abstention_scores,
    exact_match,
    percentiles,
    score_answer,
    token_f1,
)
from ragortune.evaluate.datasets import (
    CorpusEntry,
    Dataset,
    load_dataset,
    load_qrels,
)
from ragortune.evaluate.retrieval_metrics import (
    DEFAULT_KS,
    RetrievalMetrics,
    evaluate_rankings,
    metric_names,
    rank_documents,
)

__all__ = [
    "DEFAULT_KS",
    "AnswerScore",
    "CorpusEntry",
    "Dataset",
    "RetrievalMetrics",
    "abstention_scores",
    "evaluate_rankings",
    "exact_match",
    "load_dataset",
    "load_qrels",
    "metric_names",
    "percentiles",
    "rank_documents",
    "score_answer",
    "token_f1",
]
