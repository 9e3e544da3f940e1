"""The Alembic history: up from empty, down to empty, matches storage.schema, offline SQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from migrations import runner as migrate
from storage.db import create_engine
from storage.schema import metadata

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
