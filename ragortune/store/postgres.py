"""The server store: PostgreSQL + pgvector, for KBs shared by several processes or machines.

One database holds any number of KBs. Schema `ragortune` (created on first use, versioned in
`ragortune.meta`):
  kbs          one row per KB: name, settings (JSON), version (bumped by each commit)
  documents    the manifest, one row per document: content hash, source, chunk ids/hashes
  chunks_<id>  the KB's chunks: the columns of `COLUMNS`, `search_text`, the full-precision
               `embedding vector(n)`, a generated `tsv tsvector` with a GIN index, and an HNSW
               index (cosine) over `embedding::halfvec(n)`: half the index memory; the
               similarity returned is still computed from the full-precision vector.
A sync writes chunks and manifest rows in one transaction per batch, so readers (plain
autocommit queries, MVCC) see either the previous or the next consistent state, and a
killed writer's open transaction is rolled back by the server. One writer per KB: a session
advisory lock, taken without waiting.

Lexical ranking is PostgreSQL's `ts_rank` over an OR of the query's English lexemes, not
BM25: it has no inverse document frequency (a rare term weighs what a common one does) and
its length normalisation is `rank / (1 + log(length))`, not BM25's saturation. On SciFact
it ranks below bm25s (see docs/scale.md for the measured nDCG@10).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragortune.errors import ConfigError
from ragortune.store import COLUMNS, SEARCH_TEXT, StoredChunk

SCHEMA = "ragortune"
SCHEMA_VERSION = 1
TEXT_CONFIG = "english"
EF_SEARCH = 100  # HNSW candidate list; iterative scans extend it when a query needs more
EF_SEARCH_ENV = "RAGORTUNE_PG_EF_SEARCH"  # more recall for more latency (docs/scale.md)


def ef_search() -> int:
    """`hnsw.ef_search` for this process: `RAGORTUNE_PG_EF_SEARCH`, else EF_SEARCH."""
    value = os.environ.get(EF_SEARCH_ENV, "").strip()
    if not value:
        return EF_SEARCH
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise ConfigError(f"{EF_SEARCH_ENV}={value!r}: give a whole number from 1 to 1000 "
                          "(pgvector's range for hnsw.ef_search)")
    return int(value)

_CORE_DDL = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.kbs (
    id serial PRIMARY KEY, name text UNIQUE NOT NULL, settings jsonb NOT NULL,
    version bigint NOT NULL DEFAULT 0, synced_at text);
CREATE TABLE IF NOT EXISTS {SCHEMA}.documents (
    kb integer NOT NULL REFERENCES {SCHEMA}.kbs ON DELETE CASCADE, doc_key text NOT NULL,
    entry jsonb NOT NULL, PRIMARY KEY (kb, doc_key));
"""

_SELECT = ", ".join(COLUMNS)


def connect(url: str, autocommit: bool = True) -> Any:
    """A connection with pgvector's types registered (the extension must exist)."""
    import psycopg
    from pgvector.psycopg import register_vector

    connection = psycopg.connect(url, autocommit=autocommit)
    register_vector(connection)
    return connection


def ensure_schema(url: str) -> None:
    """Create the extension, schema and catalog tables on first use; refuse a newer schema."""
    import psycopg

    with psycopg.connect(url, autocommit=False) as connection:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("schema"),))
        connection.execute(_CORE_DDL)
        row = connection.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'schema_version'"
                                 ).fetchone()
        if row is None:
            connection.execute(f"INSERT INTO {SCHEMA}.meta VALUES ('schema_version', %s)",
                               (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            from ragortune.errors import KnowledgeBaseError

            raise KnowledgeBaseError(
                f"the database's ragortune schema is version {row[0]}, newer than this ragortune "
                f"understands ({SCHEMA_VERSION}): upgrade ragortune")


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for `name` (stable across processes)."""
    digest = hashlib.blake2b(f"ragortune:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def chunk_table(kb_id: int) -> str:
    return f"{SCHEMA}.chunks_{int(kb_id)}"


def create_chunk_table(connection: Any, kb_id: int, dimension: int) -> None:
    table = chunk_table(kb_id)
    columns = ", ".join(f"{name} {'integer' if name == 'position' else 'text'} NOT NULL"
                        for name in COLUMNS if name != "chunk_id")
    connection.execute(f"""
        CREATE TABLE IF NOT EXISTS {table} (
            chunk_id text PRIMARY KEY, {columns}, {SEARCH_TEXT} text NOT NULL,
            embedding vector({dimension}) NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('{TEXT_CONFIG}', {SEARCH_TEXT})) STORED);
        CREATE INDEX IF NOT EXISTS chunks_{kb_id}_hash ON {table} (content_hash);
        CREATE INDEX IF NOT EXISTS chunks_{kb_id}_tsv ON {table} USING gin (tsv);
        CREATE INDEX IF NOT EXISTS chunks_{kb_id}_hnsw ON {table}
            USING hnsw ((embedding::halfvec({dimension})) halfvec_cosine_ops);
    """)


def writer_lock(connection: Any, kb_name: str) -> bool:
    """Take the KB's writer lock for this session; False when another session holds it."""
    return bool(connection.execute("SELECT pg_try_advisory_lock(%s)",
                                   (_lock_key(f"kb:{kb_name}"),)).fetchone()[0])


class PostgresStore:
    """One KB's chunk table behind the store protocol.

    A reader uses an autocommit connection: each query sees the last committed sync. A writer
    uses a connection inside a transaction that `commit_manifest` ends."""

    def __init__(self, connection: Any, kb_id: int, dimension: int):
        self.connection = connection
        self.kb_id = kb_id
        self.dimension = dimension
        self.table = chunk_table(kb_id)
        self._settings_sql = (f"SET hnsw.ef_search = {ef_search()}; "
                              "SET hnsw.iterative_scan = strict_order")
        self._configured = False

    def _execute(self, sql: str, params: Any = ()) -> list[tuple]:
        if not self._configured:
            self.connection.execute(self._settings_sql)
            self._configured = True
        return self.connection.execute(sql, params).fetchall()

    # -- writing -----------------------------------------------------------------------
    def add(self, rows: Sequence[dict], vectors: np.ndarray) -> None:
        if not rows:
            return
        names = [*COLUMNS, SEARCH_TEXT]
        vectors = np.asarray(vectors, dtype=np.float32)
        with self.connection.cursor() as cursor, cursor.copy(
                f"COPY {self.table} ({', '.join(names)}, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types([*("int4" if n == "position" else "text" for n in names), "vector"])
            for row, vector in zip(rows, vectors):
                copy.write_row([*(row[n] for n in names), vector])

    def delete(self, chunk_ids: Sequence[str]) -> None:
        if chunk_ids:
            self.connection.execute(f"DELETE FROM {self.table} WHERE chunk_id = ANY(%s)",
                                    (list(chunk_ids),))

    def vectors_by_hash(self, content_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of chunks whose text is unchanged, so they are not embedded again."""
        found = self._execute(
            f"SELECT DISTINCT ON (content_hash) content_hash, embedding FROM {self.table} "
            "WHERE content_hash = ANY(%s)", [list(content_hashes)])
        return {value: np.asarray(vector.to_numpy(), dtype=np.float32) for value, vector in found}

    # -- reading -----------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, k: int) -> list[StoredChunk]:
        if k <= 0:
            return []
        return self._chunks(self._execute(_dense_sql(self.table, self.dimension),
                                          {"v": _vector(vector), "k": k}))

    def text_search(self, query: str, k: int) -> list[StoredChunk]:
        if not query.strip() or k <= 0:
            return []
        return self._chunks(self._execute(_text_sql(self.table), {"q": query, "k": k}))

    def hybrid_candidates(self, query: str, vector: np.ndarray, depth: int
                          ) -> tuple[list[StoredChunk], list[StoredChunk], dict[str, float]]:
        """Dense and lexical top-`depth` lists and each candidate's cosine similarity, in one
        round trip: all that hybrid fusion and the gate need from the server."""
        cosine = ", 1 - (embedding <=> %(v)s) AS similarity"
        rows = self._execute(
            f"WITH dense AS ({_dense_sql(self.table, self.dimension, cosine)}), "
            f"lexical AS ({_text_sql(self.table, cosine)}) "
            "SELECT 'd', * FROM dense UNION ALL SELECT 'l', * FROM lexical",
            {"v": _vector(vector), "k": depth, "q": query})
        dense = [row[1:-1] for row in rows if row[0] == "d"]
        lexical = [row[1:-1] for row in rows if row[0] == "l"]
        return (self._chunks(dense), self._chunks(lexical),
                {row[1]: float(row[-1]) for row in rows})

    def all_chunks(self) -> list[StoredChunk]:
        rows = self._execute(f"SELECT {_SELECT}, 0.0 FROM {self.table} ORDER BY chunk_id")
        return self._chunks(rows)

    def similarities(self, vector: np.ndarray, chunk_ids: Sequence[str]) -> np.ndarray:
        found = dict(self._execute(
            f"SELECT chunk_id, 1 - (embedding <=> %s) FROM {self.table} WHERE chunk_id = ANY(%s)",
            [_vector(vector), list(chunk_ids)]))
        return np.array([found[cid] for cid in chunk_ids], dtype=np.float32)

    def size_bytes(self) -> int:
        return int(self._execute("SELECT pg_total_relation_size(%s)", [self.table])[0][0])

    @staticmethod
    def _chunks(rows: Sequence[tuple]) -> list[StoredChunk]:
        return [StoredChunk(*row[:-1], score=float(row[-1])) for row in rows]


def _vector(vector: np.ndarray) -> Any:
    from pgvector import Vector

    return Vector(np.asarray(vector, dtype=np.float32))


def _dense_sql(table: str, dimension: int, extra: str = "") -> str:
    """Top-k through the HNSW index (half precision), scored by the full-precision cosine."""
    half = f"halfvec({dimension})"
    return (f"SELECT {_SELECT}, 1 - (embedding <=> %(v)s) AS score{extra} FROM {table} "
            f"ORDER BY embedding::{half} <=> %(v)s::{half} LIMIT %(k)s")


def _text_sql(table: str, extra: str = "") -> str:
    """Chunks holding any of the query's lexemes, by ts_rank with length normalisation."""
    return (f"SELECT {_SELECT}, ts_rank(tsv, query, 1) AS score{extra} FROM {table}, "
            "(SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(lexeme), ' | '), ''))"
            f" AS query FROM unnest(to_tsvector('{TEXT_CONFIG}', %(q)s))) AS q "
            "WHERE tsv @@ query ORDER BY score DESC, chunk_id LIMIT %(k)s")
