"""Fixtures for the repository tests: every test runs against SQLite and Postgres, each on a
database of its own (a temp SQLite file; a fresh Postgres database created from the server
behind `pg_url` and dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from storage.db import create_engine
from migrations.runner import upgrade
from storage.repository import Repository


def _plain_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def create_pg_database(pg_url: str) -> str:
    """Create a new empty database on the test server; return its SQLAlchemy URL."""
    name = f"kiebot_t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(_plain_dsn(pg_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return make_url(pg_url).set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )


async def drop_pg_database(pg_url: str, url: str) -> None:
    name = make_url(url).database
    assert name and name.startswith("kiebot_t_")
    admin = await asyncpg.connect(_plain_dsn(pg_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_pg_database(pg_url: str) -> AsyncIterator[str]:
    url = await create_pg_database(pg_url)
    try:
        yield url
    finally:
        await drop_pg_database(pg_url, url)


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'kiebot.sqlite3'}"
        return
    pg_url = request.getfixturevalue("pg_url")
    async with fresh_pg_database(pg_url) as url:
        yield url


@pytest.fixture
async def engine(db_url):
    engine = create_engine(db_url, pool_size=20, max_overflow=20) if "postgresql" in db_url else create_engine(db_url)
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def repo(engine) -> Repository:
    return Repository(engine)


@pytest.fixture
def is_pg(db_url) -> bool:
    return "postgresql" in db_url
