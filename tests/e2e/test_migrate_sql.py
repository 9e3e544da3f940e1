"""`kiebot migrate --sql` output, applied by psql (a child process, hence this tier): what an
operator pastes into Supabase's SQL editor creates the whole schema at head."""

from __future__ import annotations

import os
import subprocess

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from migrations import runner as migrate
from storage.db import create_engine
from tests.conftest import require_tool
from tests.integration.storage.conftest import fresh_pg_database

TABLES = {"users", "generations", "credit_ledger", "payments"}


async def _tables(engine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


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
