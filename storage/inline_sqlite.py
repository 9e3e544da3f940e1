"""SQLite run on the event loop's own thread: the repository's path to a file-backed database.

Why not aiosqlite for the hot path: aiosqlite sends every call (cursor, execute, fetch, close,
commit) to its thread and back through a future and the loop's self-pipe, and then waits for the
GIL. Measured on this project's 2-core machine, a one-row read by primary key through SQLAlchemy's
async engine on aiosqlite cost 700 µs of CPU; the same read through SQLAlchemy's synchronous
engine cost 89 µs and the bare sqlite3 call 10 µs. Under a crowd of updates that difference was
most of the bot's CPU. A SQLite statement on a local file in WAL mode is a few microseconds of
work that never waits for the network, so running it inline costs the loop less than handing it
to a thread does.

What keeps it from blocking the loop where SQLite could wait:
- Writers: this process's writers already take turns on storage.db.WriteQueue; the write lock
  itself (BEGIN IMMEDIATE) is tried without SQLite's busy wait and, when another process holds it,
  retried with asyncio.sleep until SQLITE_BUSY_TIMEOUT_MS has passed (the same patience as before).
- Checkpoints: the WAL is copied back into the database file by a PASSIVE checkpoint in a worker
  thread after enough commits, never by the committing connection (wal_autocheckpoint = 0), so a
  commit never pays a checkpoint's copy and fsync on the loop.
- Readers in WAL mode never wait for the writer; the short busy timeout below only covers the rare
  moments SQLite's WAL index is being rebuilt.

A transaction's body must not wait on anything but these connections (the repository's methods
are pure database work), so nothing else runs on the loop in the middle of one. The repository
gives the loop one turn before each transaction (before a writer takes its place in the
WriteQueue, never while holding it), so work between transactions stays interleaved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import OperationalError

log = logging.getLogger("storage.inline_sqlite")

Mode = Literal["write", "read", "snapshot"]
READER_BUSY_TIMEOUT_MS = 200
IDLE_CONNECTIONS = 2  # Connection objects kept between transactions (InlineSQLite._idle)
CHECKPOINT_EVERY_COMMITS = 256
BEGIN_RETRY_FIRST_S = 0.001
BEGIN_RETRY_MAX_S = 0.05
# An urgent writer (an HTTP answer waits on it) looks again this often while another process
# (a worker beside a web process) holds the lock: at 50 ms between tries a callback batch
# waited up to 50 ms past the other writer's commit.
BEGIN_RETRY_URGENT_MAX_S = 0.002


class InlineConnection:
    """The part of SQLAlchemy's AsyncConnection the repository uses, over a synchronous
    Connection: each awaitable runs the statement at once and returns its buffered result."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Any:
        return self._conn.dialect

    @property
    def sync_connection(self) -> Connection:
        return self._conn

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._conn.execute(statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._conn.scalar(statement, parameters, **kwargs)

    async def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._conn.scalars(statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._conn.exec_driver_sql(statement, parameters)

    async def run_sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(self._conn, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self._conn.begin_nested():
            yield


class InlineSQLite:
    """Synchronous SQLAlchemy engine on the same database file, driven from the event loop."""

    def __init__(self, url: URL, *, busy_timeout_ms: int) -> None:
        self._path = url.database or ""
        self._busy_timeout_s = busy_timeout_ms / 1000
        self._engine: Engine = sa.create_engine(
            url.set(drivername="sqlite+pysqlite"),
            connect_args={"check_same_thread": False},
        )
        self._commits = 0
        self._checkpointing = False
        # SQLAlchemy Connection objects kept between transactions: building one (and its event
        # dispatch) per transaction was a twentieth of an update's CPU. A transaction's body never
        # suspends between statements, so a couple cover the loop; each holds one of the pool's.
        self._idle: list[Connection] = []
        event.listen(self._engine, "connect", _on_connect)

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextlib.asynccontextmanager
    async def transaction(self, mode: Mode, *, urgent: bool = False
                          ) -> AsyncIterator[InlineConnection]:
        """`write`: BEGIN IMMEDIATE (the caller holds the process's WriteQueue; `urgent`: retried
        more often while another process holds the lock); `snapshot`: a deferred read
        transaction; `read`: no BEGIN, each statement its own WAL snapshot."""
        conn = self._checkout()
        clean = False
        try:
            if mode == "write":
                await self._begin_immediate(conn, urgent=urgent)
            elif mode == "snapshot":
                conn.exec_driver_sql("BEGIN")
            try:
                yield InlineConnection(conn)
            except BaseException:
                conn.rollback()
                raise
            if mode == "write":
                conn.commit()
                self._after_commit()
            else:
                conn.rollback()  # ends a snapshot; a no-op outside one
            clean = True
        finally:
            self._checkin(conn, clean)

    def _checkout(self) -> Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and not conn.invalidated:
                return conn
        return self._engine.connect()

    def _checkin(self, conn: Connection, clean: bool) -> None:
        """Keep a connection that ended its transaction cleanly; close any other (an error or a
        cancellation may have left it mid-transaction)."""
        if clean and len(self._idle) < IDLE_CONNECTIONS and not conn.in_transaction():
            self._idle.append(conn)
        else:
            conn.close()

    async def _begin_immediate(self, conn: Connection, *, urgent: bool = False) -> None:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout_s
        delay = BEGIN_RETRY_FIRST_S
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    return
                except OperationalError as exc:
                    if not _is_busy(exc) or loop.time() >= deadline:
                        raise
                conn.rollback()  # SQLAlchemy's side of the failed begin
                await asyncio.sleep(delay)
                delay = min(delay * 2, BEGIN_RETRY_URGENT_MAX_S if urgent else BEGIN_RETRY_MAX_S)
        finally:
            raw.execute(f"PRAGMA busy_timeout = {READER_BUSY_TIMEOUT_MS}")

    def _after_commit(self) -> None:
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY_COMMITS or self._checkpointing:
            return
        self._commits = 0
        self._checkpointing = True
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, _checkpoint, self._path)
        future.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpointing = False
        if not future.cancelled() and future.exception() is not None:
            log.warning("WAL checkpoint failed: %s", type(future.exception()).__name__)

    def dispose(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self._engine.dispose()


def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we send BEGIN ourselves
    dbapi_connection.execute(f"PRAGMA busy_timeout = {READER_BUSY_TIMEOUT_MS}")
    dbapi_connection.execute("PRAGMA foreign_keys = ON")
    dbapi_connection.execute("PRAGMA journal_mode = WAL")
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")
    dbapi_connection.execute("PRAGMA wal_autocheckpoint = 0")


def _is_busy(exc: OperationalError) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(orig or exc) or "busy" in str(orig or exc)


def _checkpoint(path: str) -> None:
    """PASSIVE: copies what no reader still needs, waits for nobody (runs in a worker thread)."""
    connection = sqlite3.connect(path, timeout=READER_BUSY_TIMEOUT_MS / 1000)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        connection.close()
