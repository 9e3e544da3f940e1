"""Postgres round trips (issue 11): reached directly, statements are prepared once per
connection and kept, reads run without BEGIN/COMMIT, and a pooled connection is pinged only when
it idled; through a transaction pooler (DB_TRANSACTION_POOLER, or guessed from the URL) nothing
prepared outlives its transaction and reads stay inside one."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

import storage.db as db
from storage.db import create_engine, looks_like_transaction_pooler, read_only, uses_transaction_pooler
from storage.repository import Repository
from storage.repository._referrals import referral_code

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("url, pooled", [
    ("postgres://u:p@aws-0-eu-west-1.pooler.supabase.com:6543/postgres", True),
    ("postgres://u:p@aws-0-eu-west-1.pooler.supabase.com:5432/postgres", True),  # harmless
    ("postgresql://u:p@db.example.com:6543/app", True),
    ("postgresql://u:p@ep-cool-name-123-pooler.eu-central-1.aws.neon.tech/app", True),
    ("postgresql://u:p@pgbouncer:5432/app", True),
    ("postgresql://u:p@db:5432/app?pgbouncer=true", True),
    ("postgresql://u:p@db.abcdefgh.supabase.co:5432/postgres", False),
    ("postgresql://postgres@127.0.0.1:5432/kiebot", False),
    ("postgresql://u:p@db/app?pgbouncer=false", False),
])
def test_transaction_pooler_is_guessed_from_the_url(url, pooled):
    assert looks_like_transaction_pooler(url) is pooled
    engine = create_engine(url)
    assert uses_transaction_pooler(engine) is pooled
    assert uses_transaction_pooler(read_only(engine)) is pooled
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    assert "pgbouncer" not in kwargs  # ours, never handed to asyncpg
    assert (kwargs["prepared_statement_cache_size"] == 0) is pooled


def test_the_setting_overrides_the_guess():
    assert not uses_transaction_pooler(create_engine("postgresql://u@h:6543/d", transaction_pooler=False))
    assert uses_transaction_pooler(create_engine("postgresql://u@h:5432/d", transaction_pooler=True))


async def _prepared_here(conn) -> list[str]:
    rows = await conn.execute(sa.text("SELECT statement FROM pg_prepared_statements"))
    return [r[0] for r in rows]


async def test_direct_statements_are_prepared_once_and_kept(pg_database):
    engine = create_engine(pg_database, pool_size=1, max_overflow=0)
    try:
        for _ in range(3):  # three transactions on the one pooled connection
            async with engine.begin() as conn:
                assert await conn.scalar(sa.text("SELECT 41 + :n"), {"n": 1}) == 42
        async with engine.connect() as conn:
            kept = await _prepared_here(conn)
        assert sum("SELECT 41 +" in s for s in kept) == 1
    finally:
        await engine.dispose()


async def test_through_a_pooler_nothing_prepared_outlives_its_transaction(pg_database):
    engine = create_engine(pg_database, pool_size=1, max_overflow=0, transaction_pooler=True)
    try:
        for _ in range(3):
            async with engine.begin() as conn:
                assert await conn.scalar(sa.text("SELECT 41 + :n"), {"n": 1}) == 42
        async with engine.begin() as conn:
            kept = await _prepared_here(conn)
        assert not any("SELECT 41 +" in s for s in kept)
    finally:
        await engine.dispose()


async def _in_transaction_after_a_read(engine) -> bool:
    async with read_only(engine).begin() as conn:
        await conn.execute(sa.text("SELECT 1"))
        raw = await conn.get_raw_connection()
        return raw.driver_connection.is_in_transaction()


async def test_direct_reads_send_no_begin_but_pooled_ones_do(pg_database):
    direct = create_engine(pg_database, pool_size=1, max_overflow=0)
    pooled = create_engine(pg_database, pool_size=1, max_overflow=0, transaction_pooler=True)
    try:
        assert not await _in_transaction_after_a_read(direct)
        assert await _in_transaction_after_a_read(pooled)
        # A snapshot read and a writer are transactions either way, and the connection a read
        # used in autocommit is back to transactions for the next writer.
        async with read_only(direct, snapshot=True).begin() as conn:
            await conn.execute(sa.text("SELECT 1"))
            assert (await conn.get_raw_connection()).driver_connection.is_in_transaction()
        async with direct.begin() as conn:
            await conn.execute(sa.text("SELECT 1"))
            assert (await conn.get_raw_connection()).driver_connection.is_in_transaction()
    finally:
        await direct.dispose()
        await pooled.dispose()


async def test_reads_and_writes_keep_working_in_both_modes(pg_database):
    for pooled in (False, True):
        engine = create_engine(pg_database, transaction_pooler=pooled)
        repo = Repository(engine)
        try:
            uid = 700 + pooled
            user, created = await repo.register_user(uid, username="ann", first_name="Ann",
                                                     last_name=None, language="en", signup_bonus=5)
            assert created and user.balance == 5
            for _ in range(3):
                assert (await repo.get_user(uid)).balance == 5
            assert [e.delta for e in await repo.ledger(uid)] == [5]
        finally:
            await engine.dispose()


async def test_only_idle_connections_are_pinged_and_a_dead_one_is_replaced(
        pg_database, monkeypatch):
    pings = []
    real_ping = AsyncAdapt_asyncpg_connection.ping

    def counting_ping(self):
        pings.append(1)
        return real_ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counting_ping)
    monkeypatch.setattr(db, "PING_IDLE_S", 0.3)
    engine = create_engine(pg_database, pool_size=1, max_overflow=0)
    repo = Repository(engine)
    try:
        async def backend_pid() -> int:
            async with engine.connect() as conn:
                return await conn.scalar(sa.text("SELECT pg_backend_pid()"))

        first = await backend_pid()
        for _ in range(5):  # used moments ago: no ping
            assert await backend_pid() == first
        assert pings == []
        async with engine.connect() as conn:  # the server drops the idle connection
            pass
        admin = create_engine(pg_database, pool_size=1, max_overflow=0)
        try:
            async with admin.connect() as conn:
                await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        finally:
            await admin.dispose()
        await asyncio.sleep(0.5)
        assert await repo.get_user(1) is None  # no error: the dead connection was replaced
        assert pings == [1]
        assert await backend_pid() != first
    finally:
        await engine.dispose()


async def test_an_explicit_pre_ping_is_kept(pg_database):
    engine = create_engine(pg_database, pool_pre_ping=True)
    try:
        assert engine.sync_engine.pool._pre_ping
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT 1")) == 1
    finally:
        await engine.dispose()


async def test_connections_past_the_pool_size_linger_then_close(pg_database, monkeypatch):
    monkeypatch.setattr(db, "OVERFLOW_LINGER_S", 0.3)
    engine = create_engine(pg_database, pool_size=2, max_overflow=2, pool_timeout=5)
    pool = engine.sync_engine.pool
    assert isinstance(pool, db.LingeringQueuePool) and pool.size() == 2
    opened = []
    sa.event.listen(engine.sync_engine, "connect", lambda *_: opened.append(1))
    try:
        async def burst(n: int) -> None:
            conns = [await engine.connect() for _ in range(n)]
            for conn in conns:
                assert await conn.scalar(sa.text("SELECT 1")) == 1
            for conn in conns:
                await conn.close()

        await burst(4)
        assert (len(opened), pool.checkedin(), pool.checkedout(), pool.overflow()) == (4, 4, 0, 2)
        await burst(4)  # the same four again: none opened, none closed
        assert len(opened) == 4 and pool.checkedin() == 4
        held = [await engine.connect() for _ in range(4)]
        waiter = asyncio.create_task(burst(1))  # a fifth waits for one of the four
        await asyncio.sleep(0.1)
        assert not waiter.done() and pool.checkedout() == 4
        await held[0].close()
        await asyncio.wait_for(waiter, 10)
        for conn in held[1:]:
            await conn.close()
        assert len(opened) == 4
        await asyncio.sleep(0.4)  # idle past the linger: the two past the size go
        await burst(1)
        await burst(1)
        assert (pool.checkedin(), pool.overflow(), pool.checkedout()) == (2, 0, 0)
        assert "Pool size: 2" in pool.status()
        assert pool.recreate().size() == 2
    finally:
        await engine.dispose()


async def test_begin_commits_rolls_back_and_always_returns_its_connection(pg_database):
    from storage.db import GreenletConnection, begin

    engine = create_engine(pg_database, pool_size=1, max_overflow=0, pool_timeout=2)
    pool = engine.sync_engine.pool
    try:
        async with begin(engine) as conn:
            assert isinstance(conn, GreenletConnection) and conn.dialect.name == "postgresql"
            await conn.execute(sa.text("CREATE TABLE t (n int)"))
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            async with conn.begin_nested():
                await conn.execute(sa.text("INSERT INTO t VALUES (2)"))
            with pytest.raises(RuntimeError):
                async with conn.begin_nested():
                    await conn.execute(sa.text("INSERT INTO t VALUES (3)"))
                    raise RuntimeError
        with pytest.raises(ZeroDivisionError):
            async with begin(engine) as conn:
                await conn.execute(sa.text("INSERT INTO t VALUES (4)"))
                1 / 0
        with pytest.raises(sa.exc.IntegrityError):
            async with begin(engine) as conn:
                await conn.execute(sa.text("ALTER TABLE t ADD PRIMARY KEY (n)"))
                await conn.execute(sa.text("INSERT INTO t VALUES (1)"))

        async def slow() -> None:
            async with begin(engine) as conn:
                await conn.execute(sa.text("INSERT INTO t VALUES (5)"))
                await conn.execute(sa.text("SELECT pg_sleep(5)"))

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.checkedout() == 0  # the one connection is back (a leak would time out below)
        async with begin(read_only(engine)) as conn:
            assert [r[0] for r in await conn.execute(sa.text("SELECT n FROM t ORDER BY n"))] == [1, 2]
            assert await conn.scalar(sa.text("SELECT count(*) FROM t")) == 2
            assert list(await conn.scalars(sa.text("SELECT n FROM t ORDER BY n"))) == [1, 2]
            assert await conn.run_sync(lambda sync: sync.scalar(sa.text("SELECT max(n) FROM t"))) == 2
    finally:
        await engine.dispose()


async def _queries_of(engine, work) -> list[str]:
    """The first word of each query sent while `work` ran on an engine of one connection: the
    statements (SQLAlchemy's cursor events) and asyncpg's query log, which sees what
    storage/direct.py runs straight on the driver and asyncpg's own BEGIN and COMMIT, but not
    SQLAlchemy's prepared statements."""
    sent: list[str] = []
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection

    def log(record) -> None:
        sent.append(record.query.split()[0].rstrip(";").upper())

    def statement(conn, cursor, text, parameters, context, executemany) -> None:
        sent.append(text.split()[0].upper())

    raw.add_query_logger(log)
    sa.event.listen(engine.sync_engine, "before_cursor_execute", statement)
    try:
        await work()
        await asyncio.sleep(0)  # asyncpg hands its log records over with call_soon
    finally:
        raw.remove_query_logger(log)
        sa.event.remove(engine.sync_engine, "before_cursor_execute", statement)
    return sent


@pytest.mark.parametrize("pooled", [False, True])
async def test_a_plain_signup_is_one_statement_when_reached_directly(pg_database, pooled):
    """A crowd's /start is mostly signups: reached directly, the new user and the bonus's ledger
    row are one statement in autocommit (read + 1 round trip, where the transaction took read +
    6); through a pooler, and for a signup with a referral, it stays a transaction."""
    engine = create_engine(pg_database, pool_size=1, max_overflow=0, transaction_pooler=pooled)
    repo = Repository(engine)
    try:
        async def plain():
            user, created = await repo.register_user(
                800 + pooled, username="ann", first_name="Ann", last_name=None, language="en",
                signup_bonus=7)
            assert created and user.balance == 7 and user.username == "ann"

        sent = await _queries_of(engine, plain)
        if pooled:
            assert "WITH" not in sent and "BEGIN" in sent
        else:
            assert sent == ["SELECT", "WITH"]
        assert [(e.delta, e.reason) for e in await repo.ledger(800 + pooled)] == [(7, "signup_bonus")]
        assert await repo.ledger_check() == []

        async def invited():
            _, created = await repo.register_user(
                810 + pooled, username=None, first_name="Bo", last_name=None, language="en",
                signup_bonus=7, start_payload="ref_" + referral_code(800 + pooled))
            assert created

        sent = await _queries_of(engine, invited)
        assert "BEGIN" in sent and "WITH" not in sent
    finally:
        await engine.dispose()

