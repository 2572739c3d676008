"""The knowledge base on disk (settings, manifest, pinned reader) and its incremental sync."""

from ragortune.kb.knowledge_base import (
    MANIFEST_FILE,
    SETTINGS_FILE,
    KBSettings,
    KnowledgeBase,
    Manifest,
    open_kb,
)

__all__ = ["MANIFEST_FILE", "SETTINGS_FILE", "KBSettings", "KnowledgeBase", "Manifest", "open_kb"]
