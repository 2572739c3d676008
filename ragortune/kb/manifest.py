"""What a KB records about itself: the settings it was built with, and its manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ragortune import __version__
from ragortune.documents.chunk import check_sizes
from ragortune.embed import Embedder
from ragortune.errors import KnowledgeBaseError
from ragortune.io import utc_now


class KBSettings(BaseModel):
    embedder: str
    dimension: int
    chunk_size: int = 240
    chunk_overlap: int = 30
    min_score: float | None = None
    created_at: str = ""
    ragortune_version: str = __version__


@dataclass
class Manifest:
    """What the KB holds at its last consistent state."""

    version: int = 0
    synced_at: str | None = None
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def chunk_count(self) -> int:
        return sum(len(doc["chunks"]) for doc in self.documents.values())


def check_settings(settings: KBSettings, where: str, spec: str | None, chunk_size: int | None,
                   chunk_overlap: int | None) -> None:
    """Vectors from two models, or chunks cut two ways, cannot be mixed in one KB."""
    if spec is not None and spec != settings.embedder:
        raise KnowledgeBaseError(
            f"knowledge base {where} was built with embedder '{settings.embedder}', not "
            f"'{spec}': use --embedder {settings.embedder}, or a new --kb folder")
    for name, wanted in (("chunk_size", chunk_size), ("chunk_overlap", chunk_overlap)):
        if wanted is not None and wanted != getattr(settings, name):
            raise KnowledgeBaseError(
                f"knowledge base {where} was built with {name} {getattr(settings, name)}, "
                f"not {wanted}: drop the flag, or use a new --kb folder")


def new_settings(embedder: Embedder, chunk_size: int | None, chunk_overlap: int | None
                 ) -> KBSettings:
    sizes = {name: value for name, value in (("chunk_size", chunk_size),
                                             ("chunk_overlap", chunk_overlap)) if value is not None}
    settings = KBSettings(embedder=embedder.name, dimension=embedder.dimension,
                          created_at=utc_now(), **sizes)
    # a chunk longer than the embedder reads would be cut silently: refuse it up front
    check_sizes(settings.chunk_size, settings.chunk_overlap, embedder.max_tokens, embedder.name)
    return settings
