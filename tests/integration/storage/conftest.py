"""Fixtures for the repository tests: every test runs against SQLite and Postgres, each on a
database of its own (a temp SQLite file; a Postgres database named at random, dropped afterwards).

- `db_url`: an empty database (the migration tests start from nothing).
- `engine` / `repo`: a database at the head migration. On Postgres it is a copy of the session's
  migrated template (tests/conftest.py), not migrated again per test.
"""

from __future__ import annotations

import pytest

from migrations.runner import upgrade
from storage.db import create_engine
from storage.repository import Repository
# Re-exported: the storage tests create and drop databases of their own with these.
from tests.conftest import create_pg_database, drop_pg_database, fresh_pg_database  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


# Sync fixtures choose the database: asking for an async fixture by name from inside an async
# fixture would start an event loop inside the running one.
@pytest.fixture
def db_url(backend, request, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'kiebot.sqlite3'}"
    return request.getfixturevalue("empty_pg_database")


@pytest.fixture
def migrated_db_url(backend, request, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'kiebot.sqlite3'}"  # migrated by `engine`
    return request.getfixturevalue("pg_database")


@pytest.fixture
async def engine(backend, migrated_db_url):
    if backend == "sqlite":
        engine = create_engine(migrated_db_url)
        await upgrade(engine)  # a few milliseconds on SQLite
    else:
        engine = create_engine(migrated_db_url, pool_size=20, max_overflow=20)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def repo(engine) -> Repository:
    return Repository(engine)


@pytest.fixture
def is_pg(backend) -> bool:
    return backend == "postgres"
