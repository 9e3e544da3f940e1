"""Engine construction for SQLite (default, local) and Postgres (Supabase via its pooler)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import uuid
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.errors import DatabaseURLError, StorageError
from storage.inline_sqlite import InlineSQLite

DEFAULT_URL = "sqlite+aiosqlite:///data/kiebot.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
# Postgres pool: sized for a burst of short transactions (each update handler runs a few, each a
# few ms). SQLAlchemy's default 5 + 10 ran out under a few hundred concurrent updates; a wait
# for a connection is harmless (transactions are short), an error is not, so the wait is long.
DEFAULT_POOL_SIZE = 20
DEFAULT_MAX_OVERFLOW = 20
DEFAULT_POOL_TIMEOUT_S = 60.0
# Execution option marking read-only work (read_only(engine) below): on SQLite it sends no
# BEGIN IMMEDIATE, so reads never queue for the write lock.
READ_ONLY = "kiebot_read_only"


def normalise_url(url: str | None) -> str:
    """Map the URL spellings people paste (Supabase gives postgres://) to our async drivers."""
    if url is None or not url.strip():
        return DEFAULT_URL
    url = url.strip()
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    for prefix in ("sqlite://", "sqlite+pysqlite://"):
        if url.startswith(prefix):
            return "sqlite+aiosqlite://" + url[len(prefix):]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    scheme = url.split("://", 1)[0] if "://" in url else "<none>"
    raise DatabaseURLError(f"unsupported database URL scheme {scheme!r}; use sqlite or postgres")


def safe_url(url: str | URL) -> str:
    """The URL with its password masked, fit for logs and error messages."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def read_only(engine: AsyncEngine, *, snapshot: bool = False) -> AsyncEngine:
    """The same engine (same pool, same listeners) for work that only reads. On SQLite it
    takes no write lock (each statement is its own WAL snapshot: a reader never waits for the
    writer), while a transaction that writes still takes the lock up front with BEGIN
    IMMEDIATE. `snapshot=True`: one deferred read transaction (plain BEGIN), for several
    statements that must see the same state. Never write through it."""
    return engine.execution_options(**{READ_ONLY: "snapshot" if snapshot else True})


class WriteQueue:
    """The in-process queue SQLite writers take turns on before BEGIN IMMEDIATE (see write_lock).

    Like asyncio.Lock (first come, first served, handed straight to the next waiter) with one
    difference: an `urgent` writer — one an HTTP answer waits on, such as a KIE callback or a
    Telegram update being stored before its 200 — goes ahead of every writer that is not, so a
    burst of pipeline work never sits between KIE and its acknowledgement."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: dict[bool, collections.deque[asyncio.Future[None]]] = {
            True: collections.deque(), False: collections.deque()}

    def locked(self) -> bool:
        return self._held

    @contextlib.asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters[urgent]
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed over just as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def _release(self) -> None:
        for urgent in (True, False):
            queue = self._waiters[urgent]
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the next writer holds it now
                    return
        self._held = False


_WRITE_QUEUES: weakref.WeakKeyDictionary[Any, WriteQueue] = weakref.WeakKeyDictionary()


def write_lock(engine: AsyncEngine) -> WriteQueue | None:
    """On SQLite, the in-process queue a writing transaction takes before BEGIN IMMEDIATE; None
    on Postgres (row locks there). SQLite has one write lock per database, and a connection that
    finds it taken polls with growing sleeps (busy_timeout), so under a burst writers waited up
    to 100 ms per poll while the lock sat free; queueing them here hands it over at once. Other
    processes on the same file still meet busy_timeout, as before."""
    if not is_sqlite(engine):
        return None
    sync_engine = engine.sync_engine
    queue = _WRITE_QUEUES.get(sync_engine)
    if queue is None:
        queue = _WRITE_QUEUES[sync_engine] = WriteQueue()
    return queue


_INLINE: weakref.WeakKeyDictionary[Any, InlineSQLite] = weakref.WeakKeyDictionary()


def inline_sqlite(engine: AsyncEngine) -> InlineSQLite | None:
    """The synchronous twin of a file-backed SQLite engine that the repository runs its
    transactions on (storage/inline_sqlite.py says why); None for Postgres and in-memory SQLite,
    which keep the async engine."""
    return _INLINE.get(engine.sync_engine)


def statement_engines(engine: AsyncEngine) -> list[Any]:
    """Every synchronous Engine that runs this engine's statements (for event listeners, e.g.
    a test counting writes): the async engine's own and, on file-backed SQLite, the inline one."""
    inline = inline_sqlite(engine)
    return [engine.sync_engine] + ([inline.engine] if inline is not None else [])


def create_engine(
    url: str | None = None,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    pool_timeout: float | None = None,
    **engine_kwargs: Any,
) -> AsyncEngine:
    """Build the AsyncEngine; nothing connects until first use. The pool settings apply to
    Postgres (None: DEFAULT_POOL_SIZE etc.); SQLite has one writer and keeps SQLAlchemy's
    pool. Other keyword arguments go to create_async_engine."""
    text_url = normalise_url(url)
    try:
        parsed = make_url(text_url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise DatabaseURLError("the database URL cannot be parsed") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **engine_kwargs)
    pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
    engine_kwargs.update({k: v for k, v in pool.items() if v is not None})
    return _postgres_engine(parsed, **engine_kwargs)


def _sqlite_engine(url: URL, **engine_kwargs: Any) -> AsyncEngine:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise StorageError(
            f"SQLite {sqlite3.sqlite_version} is too old; kiebot needs >= 3.35 (RETURNING)"
        )
    database = url.database or ""
    file_backed = database not in ("", ":memory:") and not database.startswith("file:")
    if file_backed:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **engine_kwargs)
    if file_backed:
        inline = InlineSQLite(url, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
        _INLINE[engine.sync_engine] = inline
        event.listen(engine.sync_engine, "engine_disposed", lambda _engine: inline.dispose())

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so SAVEPOINT works and so we
        # can open every transaction with BEGIN IMMEDIATE (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if file_backed:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes fails with SQLITE_BUSY under
        # concurrency (the snapshot is stale); IMMEDIATE takes the write lock up front and
        # waits for it (busy_timeout), which serialises writers the way row locks do on PG.
        # Read-only transactions (read_only() above) take no lock and send no BEGIN at all:
        # each statement then runs in its own implicit read transaction (a consistent WAL
        # snapshot), and the BEGIN's round trips to aiosqlite's thread — a third of a one-row
        # read — are saved. A read whose statements must agree with each other uses _tx().
        mode = conn.get_execution_options().get(READ_ONLY)
        if mode == "snapshot":  # several statements that must agree: one deferred read tx
            conn.exec_driver_sql("BEGIN")
        elif not mode:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: URL, **engine_kwargs: Any) -> AsyncEngine:
    # Supabase's transaction pooler hands each transaction to any backend connection, so
    # server-side prepared statements must be neither cached nor reused by name.
    query = dict(url.query)
    query.setdefault("prepared_statement_cache_size", "0")
    # libpq spells it sslmode (Supabase's connection strings carry ?sslmode=require); asyncpg
    # takes the same values as `ssl` and rejects `sslmode` with a TypeError at connect time.
    if "sslmode" in query:
        query.setdefault("ssl", query.pop("sslmode"))
    url = url.set(query=query)
    connect_args = dict(engine_kwargs.pop("connect_args", {}) or {})
    connect_args.setdefault("statement_cache_size", 0)
    connect_args.setdefault("prepared_statement_name_func", _unique_statement_name)
    engine_kwargs.setdefault("pool_pre_ping", True)
    engine_kwargs.setdefault("pool_size", DEFAULT_POOL_SIZE)
    engine_kwargs.setdefault("max_overflow", DEFAULT_MAX_OVERFLOW)
    engine_kwargs.setdefault("pool_timeout", DEFAULT_POOL_TIMEOUT_S)
    return create_async_engine(url, connect_args=connect_args, **engine_kwargs)


def _unique_statement_name() -> str:
    return f"__kiebot_{uuid.uuid4().hex}__"
