"""ragortune: measure whether knowledge belongs in retrieval (RAG), fine-tuning, or both."""

__version__ = "0.1.0"
