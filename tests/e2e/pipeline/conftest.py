"""Pipeline fixtures: a private Postgres database per test (created and dropped here)."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy.engine import make_url


@pytest.fixture
async def pg_database(pg_url):
    """A fresh, empty database on the test server, so parallel suites never share rows."""
    import asyncpg

    url = make_url(pg_url)
    name = f"kiebot_pipeline_{secrets.token_hex(4)}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
