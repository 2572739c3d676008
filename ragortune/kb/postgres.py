"""A knowledge base kept in PostgreSQL: settings, manifest and chunks in one database.

A sync commits each batch as one transaction (chunk rows, manifest rows, version), so a
killed ingest leaves the last committed state and readers on any machine see a commit as soon
as it lands. One writer per KB: a second ingest fails at once with a clear message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ragortune.embed import Embedder, load_embedder
from ragortune.errors import KnowledgeBaseError
from ragortune.io import utc_now
from ragortune.kb.manifest import KBSettings, Manifest, check_settings, new_settings
from ragortune.store.postgres import (
    SCHEMA,
    PostgresStore,
    connect,
    create_chunk_table,
    ensure_schema,
    writer_lock,
)


class PostgresCatalog:
    def __init__(self, url: str, name: str, kb_id: int, dimension: int):
        self.url = url
        self.name = name
        self.kb_id = kb_id
        self.dimension = dimension
        self._reader: PostgresStore | None = None
        self._saved: dict[str, dict[str, Any]] = {}  # manifest rows as last committed

    def load_manifest(self) -> Manifest:
        with connect(self.url) as connection:
            version, synced_at = connection.execute(
                f"SELECT version, synced_at FROM {SCHEMA}.kbs WHERE id = %s", [self.kb_id]
            ).fetchone()
            rows = connection.execute(
                f"SELECT doc_key, entry FROM {SCHEMA}.documents WHERE kb = %s", [self.kb_id]
            ).fetchall()
        return Manifest(int(version), synced_at, dict(rows))

    def save_settings(self, settings: KBSettings) -> None:
        with connect(self.url) as connection:
            connection.execute(f"UPDATE {SCHEMA}.kbs SET settings = %s WHERE id = %s",
                               [json.dumps(settings.model_dump()), self.kb_id])

    @contextmanager
    def writing(self) -> Iterator[PostgresStore]:
        """A connection holding the KB's advisory lock, inside one open transaction; leaving
        by an exception rolls back the uncommitted batch (the server does the same when the
        process dies)."""
        with connect(self.url) as connection:
            if not writer_lock(connection, self.name):
                raise KnowledgeBaseError(
                    f"another ingest is writing to knowledge base '{self.name}' in this "
                    "database; wait for it to finish")
            connection.autocommit = False
            self._saved = self.load_manifest().documents
            try:
                yield PostgresStore(connection, self.kb_id, self.dimension)
            except BaseException:
                connection.rollback()
                raise

    def commit(self, writer: PostgresStore, documents: dict[str, dict[str, Any]],
               final: bool) -> Manifest:
        """Manifest rows that changed, the version bump and the batch's chunks: one commit."""
        connection = writer.connection
        changed = [(key, entry) for key, entry in documents.items() if self._saved.get(key) != entry]
        gone = [key for key in self._saved if key not in documents]
        if gone:
            connection.execute(f"DELETE FROM {SCHEMA}.documents WHERE kb = %s AND doc_key = ANY(%s)",
                               [self.kb_id, gone])
        if changed:
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {SCHEMA}.documents (kb, doc_key, entry) VALUES (%s, %s, %s) "
                    "ON CONFLICT (kb, doc_key) DO UPDATE SET entry = excluded.entry",
                    [(self.kb_id, key, json.dumps(entry)) for key, entry in changed])
        synced_at = utc_now()
        version = connection.execute(
            f"UPDATE {SCHEMA}.kbs SET version = version + 1, synced_at = %s WHERE id = %s "
            "RETURNING version", [synced_at, self.kb_id]).fetchone()[0]
        connection.commit()
        self._saved = {key: entry for key, entry in documents.items()}
        if final:  # fresh planner statistics after a large change; outside the transaction
            connection.autocommit = True
            connection.execute(f"ANALYZE {writer.table}")
            connection.autocommit = False
        return Manifest(int(version), synced_at, dict(documents))

    def reader(self, current: Manifest | None) -> tuple[PostgresStore, Manifest | None]:
        """One autocommit connection: every query sees the last committed sync."""
        if self._reader is None:
            self._reader = PostgresStore(connect(self.url), self.kb_id, self.dimension)
        return self._reader, current

    def summary(self) -> dict[str, Any]:
        """One aggregate query: the manifest rows are counted in the server, not fetched."""
        with connect(self.url) as connection:
            version, synced_at, documents, chunks = connection.execute(
                f"SELECT k.version, k.synced_at, count(d.doc_key), "
                f"coalesce(sum(jsonb_array_length(d.entry -> 'chunks')), 0) "
                f"FROM {SCHEMA}.kbs k LEFT JOIN {SCHEMA}.documents d ON d.kb = k.id "
                "WHERE k.id = %s GROUP BY k.id", [self.kb_id]).fetchone()
        return {"documents": int(documents), "chunks": int(chunks), "last_sync": synced_at,
                "store_version": int(version)}

    def size_bytes(self) -> int:
        with connect(self.url) as connection:
            return int(connection.execute("SELECT pg_total_relation_size(%s)",
                                          [f"{SCHEMA}.chunks_{self.kb_id}"]).fetchone()[0])


def open_postgres_kb(url: str, name: str, embedder: Embedder | str | None = None,
                     create: bool = False, chunk_size: int | None = None,
                     chunk_overlap: int | None = None
                     ) -> tuple[str, KBSettings, Embedder | None, PostgresCatalog]:
    """Find (or with `create`, make) the KB `name` in the PostgreSQL database at `url`:
    its locator, settings, the embedder if loaded, and its catalog."""
    try:
        import psycopg
    except ImportError:
        raise KnowledgeBaseError("a PostgreSQL store needs psycopg and pgvector: "
                                 "pip install 'ragortune[postgres]'") from None
    locator = f"{url}#{name}"
    try:
        ensure_schema(url)
    except psycopg.OperationalError as exc:
        raise KnowledgeBaseError(f"cannot connect to the store {url.split('@')[-1]}: "
                                 f"{str(exc).strip().splitlines()[0]}") from None
    loaded = embedder if embedder is not None and not isinstance(embedder, str) else None
    spec = loaded.name if loaded is not None else embedder
    with connect(url) as connection:
        row = connection.execute(f"SELECT id, settings FROM {SCHEMA}.kbs WHERE name = %s",
                                 [name]).fetchone()
    if row is not None:
        settings = KBSettings(**row[1])
        check_settings(settings, locator, spec, chunk_size, chunk_overlap)
        return locator, settings, loaded, PostgresCatalog(url, name, row[0], settings.dimension)
    if not create:
        raise KnowledgeBaseError(f"no knowledge base '{name}' in {url.split('@')[-1]}: run "
                                 f"`ragortune ingest PATH --store URL --kb {name}` first")
    loaded = loaded or load_embedder(spec or "minilm")
    settings = new_settings(loaded, chunk_size, chunk_overlap)
    with connect(url, autocommit=False) as connection:  # KB row and its table together
        kb_id = connection.execute(
            f"INSERT INTO {SCHEMA}.kbs (name, settings) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            [name, json.dumps(settings.model_dump())]).fetchone()[0]
        create_chunk_table(connection, kb_id, settings.dimension)
    return open_postgres_kb(url, name, loaded, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
