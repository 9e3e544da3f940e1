"""The Alembic history: up from empty, down to empty, matches storage.schema, offline SQL."""

from __future__ import annotations

import os
import subprocess

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from migrations import runner as migrate
from storage.db import create_engine
from storage.schema import metadata
from tests.conftest import require_tool
from tests.integration.storage.conftest import fresh_pg_database

TABLES = {"users", "generations", "credit_ledger", "payments"}


async def _tables(engine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_upgrade_from_empty_and_downgrade_to_empty(db_url):
    engine = create_engine(db_url)
    try:
        assert await migrate.current_revision(engine) is None
        assert await migrate.ensure_schema(engine) is True
        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert TABLES <= await _tables(engine)
        assert await migrate.ensure_schema(engine) is False  # already at head: no-op
        await migrate.downgrade(engine)
        assert await _tables(engine) <= {"alembic_version"}
        await migrate.upgrade(engine)  # and back up again cleanly
        assert TABLES <= await _tables(engine)
    finally:
        await engine.dispose()


async def test_migrations_match_schema_module(db_url):
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_ensure_schema_accepts_a_url_and_creates_the_file(tmp_path):
    path = tmp_path / "sub" / "bot.sqlite3"
    url = f"sqlite:///{path}"
    assert await migrate.ensure_schema(url) is True
    assert path.exists()
    assert await migrate.ensure_schema(url) is False


def test_postgres_sql_is_complete():
    sql = migrate.postgres_sql()
    for table in TABLES:
        assert f"CREATE TABLE {table}" in sql
    assert "JSONB" in sql and "TIMESTAMP WITH TIME ZONE" in sql
    assert "WHERE reason = 'signup_bonus'" in sql
    assert "storage.buckets" in sql and sql.rstrip().endswith("COMMIT;")


async def test_postgres_sql_applies_with_psql(pg_url):
    # Same rule as for the servers: locally a skip, under CI a failure (the issue's "Done
    # when" names psql explicitly).
    require_tool("psql")
    sql = migrate.postgres_sql()
    async with fresh_pg_database(pg_url) as url:
        parsed = make_url(url)
        proc = subprocess.run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-X", "-q", "-h", parsed.host or "127.0.0.1",
             "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres", "-d", parsed.database],
            input=sql, text=True, capture_output=True, timeout=60,
            env={**os.environ, "PGPASSWORD": parsed.password or ""},
        )
        assert proc.returncode == 0, proc.stderr
        engine = create_engine(url)
        try:
            assert TABLES <= await _tables(engine)
            assert await migrate.current_revision(engine) == migrate.head_revision()
        finally:
            await engine.dispose()
