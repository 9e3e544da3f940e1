"""storage/direct.py on a real Postgres: a statement run straight on asyncpg returns what
SQLAlchemy returns for it, a connection the server dropped is reported as unavailable and
discarded (the next statement gets a fresh one), and what the database refuses comes out as the
repository's typed errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from storage import db, direct
from storage.db import create_engine
from storage.errors import DatabaseUnavailableError, InvalidFieldError, StorageError
from storage.repository import Repository
from storage.repository._prepared import (
    ADD_TO_BALANCE,
    SELECT_LEDGER_WITH_BALANCE,
    SELECT_USER_AWAITING,
)

pytestmark = pytest.mark.postgres


async def test_rows_are_what_sqlalchemy_returns(pg_database):
    engine = create_engine(pg_database, pool_size=1, max_overflow=0)
    repo = Repository(engine)
    try:
        at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        await repo.register_user(5, username="é", first_name=None, last_name="L", language="ru",
                                 signup_bonus=3, start_payload="p", now=at)
        await repo.admin_adjust(5, 4, admin_id=1, note="n", idempotency_key="admin:1")
        for statement, params in ((SELECT_USER_AWAITING, {"uid": 5}),
                                  (SELECT_LEDGER_WITH_BALANCE, {"uid": 5, "limit": 10}),
                                  (SELECT_USER_AWAITING, {"uid": 6})):
            mine = [dict(r._mapping.items()) for r in await direct.fetch(engine, statement, params)]
            async with engine.connect() as conn:
                theirs = [dict(r._mapping) for r in await conn.execute(statement, params)]
            assert mine == theirs
            assert [{k: type(v) for k, v in r.items()} for r in mine] == [
                {k: type(v) for k, v in r.items()} for r in theirs]
        (row,) = await direct.fetch(engine, SELECT_USER_AWAITING, {"uid": 5})
        assert (row.username, row.created_at, row.awaiting_delivery) == ("é", at, False)
        with pytest.raises(AttributeError):
            _ = row.no_such_column
    finally:
        await engine.dispose()


async def test_a_connection_the_server_dropped_is_unavailable_then_replaced(pg_database, monkeypatch):
    # No ping on checkout however long the busy machine takes here: the drop must be met.
    monkeypatch.setattr(db, "PING_IDLE_S", 3600.0)
    engine = create_engine(pg_database, pool_size=1, max_overflow=0)
    admin = create_engine(pg_database, pool_size=1, max_overflow=0)
    repo = Repository(engine)
    try:
        async with direct.pooled_driver(engine) as conn:
            first = await conn.fetchval("SELECT pg_backend_pid()")
        async with admin.connect() as conn:
            await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            while await conn.scalar(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                    {"pid": first}):
                await asyncio.sleep(0.01)  # until the server has let the backend go
        with pytest.raises(DatabaseUnavailableError) as lost:
            await repo.get_user(1)
        assert "unavailable" in str(lost.value)
        assert await repo.get_user(1) is None  # the dead connection was discarded, not pooled
        async with direct.pooled_driver(engine) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != first
    finally:
        await admin.dispose()
        await engine.dispose()


async def test_what_the_database_refuses_is_a_typed_error(pg_database):
    engine = create_engine(pg_database)
    repo = Repository(engine)
    try:
        await repo.register_user(7, username=None, first_name="A", last_name=None, language="en",
                                 signup_bonus=2)
        with pytest.raises(StorageError, match="constraint violated") as negative:
            await repo._direct(ADD_TO_BALANCE.returning(sa.literal(1)), {"uid": 7, "amount": -5})
        assert not isinstance(negative.value, DatabaseUnavailableError)
        with pytest.raises(InvalidFieldError, match="rejected by the database"):
            await repo._direct(SELECT_USER_AWAITING, {"uid": "seven"})
        assert (await repo.get_user(7)).balance == 2  # nothing half-written, the pool still fine
    finally:
        await engine.dispose()


async def _lock_is_free(engine, key: int) -> bool:
    async with engine.connect() as conn:
        taken = await conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
        if taken:
            await conn.scalar(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return bool(taken)


async def test_a_transaction_that_fails_or_is_cancelled_never_returns_to_the_pool(pg_database):
    """fetch_in_transaction (the inbox claim's path): an error or a cancellation between BEGIN
    and COMMIT discards the connection, so its transaction and advisory lock end with it and
    the pool hands out a clean connection next."""
    engine = create_engine(pg_database, pool_size=1, max_overflow=0)
    other = create_engine(pg_database, pool_size=1, max_overflow=0)
    repo = Repository(engine)
    key = 4242
    try:
        with pytest.raises(InvalidFieldError):
            await repo._direct(SELECT_USER_AWAITING, {"uid": "x"},
                               prelude=f"SELECT pg_advisory_xact_lock({key})")
        assert await _lock_is_free(other, key)
        slow = sa.select(sa.func.pg_sleep(0.3), sa.literal(1))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                repo._direct(slow, {}, prelude=f"SELECT pg_advisory_xact_lock({key})"), 0.05)
        async with asyncio.timeout(30):  # the server ends the backend once its sleep is over
            while not await _lock_is_free(other, key):
                await asyncio.sleep(0.05)
        async with direct.pooled_driver(engine) as conn:
            assert not conn.is_in_transaction()
        rows = await repo._direct(SELECT_USER_AWAITING, {"uid": 1},
                                  prelude=f"SELECT pg_advisory_xact_lock({key})")
        assert rows == [] and await _lock_is_free(other, key)  # committed: the lock is released
    finally:
        await other.dispose()
        await engine.dispose()
