"""Engine construction for SQLite (default, local) and Postgres (Supabase via its pooler)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import greenlet_spawn

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
# Postgres reached directly (not through a transaction pooler): statements are prepared once per
# connection and kept (SQLAlchemy's per-connection cache of asyncpg prepared statements, this many
# per connection), so a statement costs one round trip instead of prepare + execute + close.
STATEMENT_CACHE_SIZE = 256
# A pooled Postgres connection is pinged on checkout only when it sat idle in the pool longer
# than this (pool_pre_ping pinged every checkout: BEGIN; ";"; ROLLBACK — three round trips per
# transaction). A connection used moments ago is alive; one that idled may have been closed by the
# server, a pooler or a middlebox, and is replaced before anyone's statement meets it.
PING_IDLE_S = 5.0
# Host names and ports that say "transaction pooler" (looks_like_transaction_pooler below):
# Supabase's transaction pooler listens on 6543 (pooler.supabase.com; its session mode on 5432
# is treated the same, harmlessly), Neon's pooled hosts end in -pooler, PgBouncer's often say so.
POOLER_PORTS = frozenset({6543})
POOLER_HOST_MARKS = ("pooler", "pgbouncer")
# A Postgres connection opened beyond DB_POOL_SIZE (one of DB_MAX_OVERFLOW) is closed once it has
# sat unused this long, not the moment it is returned: under a steady crowd the pool's use
# hovers around its size, and closing every connection past it at once meant opening another
# moments later (a new backend, TLS and login, every statement prepared again: ~4 ms of the
# bot's CPU and more of the server's each; 96 connections opened in one 2,000-update run).
OVERFLOW_LINGER_S = 30.0

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
    IMMEDIATE. On Postgres reached directly, likewise no BEGIN/COMMIT: each statement runs in
    autocommit as its own snapshot (through a transaction pooler reads stay in a transaction,
    which is what keeps a statement's round trips on one server connection). `snapshot=True`:
    one read transaction (plain BEGIN), for several statements that must see the same state.
    Never write through it."""
    options: dict[str, Any] = {READ_ONLY: "snapshot" if snapshot else True}
    if not snapshot and is_postgres(engine) and not uses_transaction_pooler(engine):
        options["isolation_level"] = "AUTOCOMMIT"
    return engine.execution_options(**options)


def autocommit_writer(engine: AsyncEngine) -> AsyncEngine | None:
    """Postgres reached directly: the same engine in autocommit, for a write that is one
    statement — atomic on its own, so BEGIN and COMMIT would only add two round trips.
    None elsewhere: SQLite writers queue for the write lock (Repository._tx), and through a
    transaction pooler a statement's round trips stay on one server connection only inside a
    transaction (see read_only)."""
    if not is_postgres(engine) or uses_transaction_pooler(engine):
        return None
    return engine.execution_options(isolation_level="AUTOCOMMIT")


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


class GreenletConnection:
    """The part of SQLAlchemy's AsyncConnection the repository uses (InlineConnection's subset),
    over a synchronous Connection whose statements each run in one greenlet of SQLAlchemy's
    asyncio bridge, as AsyncConnection runs them. Results are buffered, as AsyncConnection's."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Any:
        return self._conn.dialect

    @property
    def sync_connection(self) -> Any:
        return self._conn

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return await greenlet_spawn(self._conn.execute, statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return await greenlet_spawn(self._conn.scalar, statement, parameters, **kwargs)

    async def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return await greenlet_spawn(self._conn.scalars, statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return await greenlet_spawn(self._conn.exec_driver_sql, statement, parameters)

    async def run_sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await greenlet_spawn(fn, self._conn, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        nested = await greenlet_spawn(self._conn.begin_nested)
        try:
            yield
        except BaseException:
            await greenlet_spawn(nested.rollback)
            raise
        await greenlet_spawn(nested.commit)


def _open(sync_engine: Any) -> Any:
    conn = sync_engine.connect()
    try:
        conn.begin()
    except BaseException:
        conn.close()
        raise
    return conn


def _end(conn: Any, commit: bool) -> None:
    try:
        if commit:
            conn.commit()
        else:
            conn.rollback()
    finally:
        conn.close()  # back to the pool, even when the commit failed or was cancelled


@contextlib.asynccontextmanager
async def begin(engine: AsyncEngine) -> AsyncIterator[Any]:
    """`engine.begin()` for the repository's transactions. On Postgres one greenlet checks a
    connection out and begins, one per statement runs it, one commits (or rolls back) and
    returns the connection, where AsyncEngine.begin() runs five plus one per statement, each
    with its AsyncConnection/AsyncTransaction wrapping (a one-row repository read: 415 us of
    CPU through it, 315 us through this). SQLite (aiosqlite's engine) keeps engine.begin().
    As in SQLAlchemy's own transaction block, a failing rollback never hides the error that
    caused it."""
    if not is_postgres(engine):
        async with engine.begin() as conn:
            yield conn
        return
    conn = await greenlet_spawn(_open, engine.sync_engine)
    try:
        yield GreenletConnection(conn)
    except BaseException:
        with contextlib.suppress(Exception):  # a broken connection: the pool discards it
            await greenlet_spawn(_end, conn, False)
        raise
    await greenlet_spawn(_end, conn, True)


_POOLED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def uses_transaction_pooler(engine: AsyncEngine) -> bool:
    """Whether this Postgres engine was built for a transaction pooler (create_engine)."""
    return _POOLED.get(engine.sync_engine.pool, False)


def looks_like_transaction_pooler(url: str | URL) -> bool:
    """Auto-detection for DB_TRANSACTION_POOLER=auto: port 6543 (Supabase's transaction
    pooler), a host naming a pooler (…pooler.supabase.com, Neon's …-pooler hosts, pgbouncer),
    or ?pgbouncer=true in the URL. A pooler elsewhere must be named by the setting."""
    parsed = make_url(normalise_url(url) if isinstance(url, str) else url)
    host = (parsed.host or "").lower()
    flag = str(parsed.query.get("pgbouncer", "")).lower() in {"1", "true", "yes", "on"}
    return flag or parsed.port in POOLER_PORTS or any(mark in host for mark in POOLER_HOST_MARKS)


def create_engine(
    url: str | None = None,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    pool_timeout: float | None = None,
    transaction_pooler: bool | None = None,
    **engine_kwargs: Any,
) -> AsyncEngine:
    """Build the AsyncEngine; nothing connects until first use. The pool settings apply to
    Postgres (None: DEFAULT_POOL_SIZE etc.); SQLite has one writer and keeps SQLAlchemy's
    pool. `transaction_pooler` (Postgres): True when the URL goes through a transaction pooler
    (PgBouncer or Supavisor in transaction mode), False when it reaches Postgres (or a session
    pooler) directly, None to guess from the URL (looks_like_transaction_pooler). Other keyword
    arguments go to create_async_engine."""
    text_url = normalise_url(url)
    try:
        parsed = make_url(text_url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise DatabaseURLError("the database URL cannot be parsed") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **engine_kwargs)
    pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
    engine_kwargs.update({k: v for k, v in pool.items() if v is not None})
    if transaction_pooler is None:
        transaction_pooler = looks_like_transaction_pooler(parsed)
    return _postgres_engine(parsed, transaction_pooler=transaction_pooler, **engine_kwargs)


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


def _postgres_engine(url: URL, *, transaction_pooler: bool, **engine_kwargs: Any) -> AsyncEngine:
    query = dict(url.query)
    query.pop("pgbouncer", None)  # ours (looks_like_transaction_pooler), not asyncpg's
    connect_args = dict(engine_kwargs.pop("connect_args", {}) or {})
    if transaction_pooler:
        # A transaction pooler hands each transaction to any backend connection, so server-side
        # prepared statements must be neither cached nor reused by name.
        query.setdefault("prepared_statement_cache_size", "0")
        connect_args.setdefault("statement_cache_size", 0)
    else:
        query.setdefault("prepared_statement_cache_size", str(STATEMENT_CACHE_SIZE))
    connect_args.setdefault("prepared_statement_name_func", _unique_statement_name)
    # libpq spells it sslmode (Supabase's connection strings carry ?sslmode=require); asyncpg
    # takes the same values as `ssl` and rejects `sslmode` with a TypeError at connect time.
    if "sslmode" in query:
        query.setdefault("ssl", query.pop("sslmode"))
    url = url.set(query=query)
    ping_idle = not engine_kwargs.get("pool_pre_ping", False)  # an explicit pre-ping wins
    engine_kwargs.setdefault("pool_size", DEFAULT_POOL_SIZE)
    engine_kwargs.setdefault("max_overflow", DEFAULT_MAX_OVERFLOW)
    engine_kwargs.setdefault("pool_timeout", DEFAULT_POOL_TIMEOUT_S)
    # Last in, first out: under a light load the same few connections serve everything (and stay
    # warm, so they are not pinged), while the rest idle and are the ones pinged or recycled.
    engine_kwargs.setdefault("pool_use_lifo", True)
    engine_kwargs.setdefault("poolclass", LingeringQueuePool)
    engine = create_async_engine(url, connect_args=connect_args, **engine_kwargs)
    _POOLED[engine.sync_engine.pool] = transaction_pooler
    if ping_idle:
        _ping_when_idle(engine.sync_engine.pool, PING_IDLE_S)
    return engine


_RETURNED = "kiebot_returned_at"


class LingeringQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio QueuePool (at most pool_size + max_overflow connections, a checkout
    waits up to `timeout` beyond that), except that a connection past pool_size is not closed
    when it is returned: it waits idle like the others and is closed once it has been idle for
    OVERFLOW_LINGER_S, so a load that keeps needing it keeps it (see OVERFLOW_LINGER_S)."""

    def __init__(self, creator: Any, pool_size: int = 5, max_overflow: int = 10,
                 timeout: float = 30.0, use_lifo: bool = False, **kw: Any) -> None:
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow,
                         timeout=timeout, use_lifo=use_lifo, **kw)
        self._size = pool_size
        if pool_size > 0 and max_overflow > 0:  # room for every connection to wait idle
            self._pool = self._queue_class(pool_size + max_overflow, use_lifo=use_lifo)

    # QueuePool reads its size off its queue's bound, which is larger here.
    def size(self) -> int:
        return self._size

    def checkedout(self) -> int:
        return self._size - self._pool.qsize() + self._overflow

    def recreate(self) -> LingeringQueuePool:
        self.logger.info("Pool recreating")
        return self.__class__(
            self._creator, pool_size=self._size, max_overflow=self._max_overflow,
            pre_ping=self._pre_ping, use_lifo=self._pool.use_lifo, timeout=self._timeout,
            recycle=self._recycle, echo=self.echo, logging_name=self._orig_logging_name,
            reset_on_return=self._reset_on_return, _dispatch=self.dispatch, dialect=self._dialect)

    def _do_return_conn(self, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()
        super()._do_return_conn(record)
        self._close_lingering()

    def _do_get(self) -> Any:
        self._close_lingering()
        return super()._do_get()

    def _close_lingering(self) -> None:
        """While more than pool_size connections are open, close the one idle longest if it has
        idled past OVERFLOW_LINGER_S (one per call: returns and checkouts come often enough)."""
        if self._overflow <= 0:
            return
        idle = getattr(getattr(self._pool, "_queue", None), "_queue", None)  # oldest first
        if not idle:
            return
        oldest = idle[0]
        if time.monotonic() - oldest.info.get(_RETURNED, time.monotonic()) <= OVERFLOW_LINGER_S:
            return
        del idle[0]  # idle records only: no waiter is woken by taking one away
        try:
            oldest.close()
        finally:
            self._dec_overflow()


def _ping_when_idle(pool: Any, idle_s: float) -> None:
    """pool_pre_ping for connections that idled: a checkout pings only a connection returned to
    the pool more than `idle_s` ago; a dead one raises DisconnectionError, on which the pool
    discards it and hands out another (SQLAlchemy's "pessimistic disconnect handling")."""

    @event.listens_for(pool, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(pool, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED, 0.0) <= idle_s:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise sa_exc.DisconnectionError("connection found dead on checkout") from exc
        record.info[_RETURNED] = time.monotonic()


def _unique_statement_name() -> str:
    return f"__kiebot_{uuid.uuid4().hex}__"
