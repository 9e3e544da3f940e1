"""Shared plumbing for the repository: transactions with error translation, validation,
timestamp normalisation and row → record mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage import direct
from storage.db import (
    autocommit_writer,
    begin,
    inline_sqlite,
    is_postgres,
    read_only,
    write_lock,
)
from storage.errors import (
    DatabaseUnavailableError,
    InvalidAmountError,
    InvalidFieldError,
    StorageError,
)
from storage.repository._prepared import insert_once
from storage.models import Generation, GenerationStatus, LedgerEntry, Payment, Stage, User
from storage.schema import credit_ledger, generations, payments, users

MAX_AMOUNT = 10**9
# What a statement may raise that the repository reports as a typed StorageError: SQLAlchemy's
# errors, and asyncpg's own where a statement runs straight on the driver (storage/direct.py).
_DATABASE_ERRORS = (sa_exc.DBAPIError, sa_exc.TimeoutError, sa_exc.DisconnectionError,
                    sa_exc.ResourceClosedError, OSError)
_DRIVER_ERRORS = (*_DATABASE_ERRORS, asyncpg.PostgresError, *direct.CONNECTION_LOST)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_utc(value: datetime | None) -> datetime | None:
    """Aware UTC for binding and returning. Naive values are taken to already be UTC (that is
    what SQLite hands back, since it has no time zone type)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidFieldError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def check_amount(name: str, value: Any, *, allow_zero: bool = False, allow_negative: bool = False) -> int:
    """Reject anything but a sane integer before touching the database."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmountError(f"{name} must be an integer, got {type(value).__name__}")
    if abs(value) > MAX_AMOUNT:
        raise InvalidAmountError(f"{name} {value} is out of range (|{name}| <= {MAX_AMOUNT})")
    if value == 0 and not allow_zero:
        raise InvalidAmountError(f"{name} must not be zero")
    if value < 0 and not allow_negative:
        raise InvalidAmountError(f"{name} must not be negative, got {value}")
    return value


def check_id(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFieldError(f"{name} must be an integer, got {type(value).__name__}")
    if not -(2**63) <= value < 2**63:
        raise InvalidFieldError(f"{name} {value} does not fit in 64 bits")
    return value


def check_text(name: str, value: Any, *, max_length: int, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidFieldError(f"{name} must be a non-empty string")
    if len(value) > max_length:
        raise InvalidFieldError(f"{name} is longer than {max_length} characters")
    return value


def check_status(value: Any) -> GenerationStatus:
    """A GenerationStatus from an enum member or its plain string value."""
    try:
        return GenerationStatus(value)
    except (ValueError, TypeError):
        raise InvalidFieldError(f"unknown generation status {value!r}") from None


def check_stage(value: Any) -> Stage:
    try:
        return Stage(value)
    except (ValueError, TypeError):
        expected = ", ".join(Stage)
        raise InvalidFieldError(f"unknown stage {value!r}; expected one of {expected}") from None


def status_in(statuses: Iterable[GenerationStatus]) -> sa.ColumnElement[bool]:
    """`generations.status IN (...)`, bound with the enum's plain values in a stable order."""
    return generations.c.status.in_(sorted(check_status(s).value for s in statuses))


def _aware(values: Mapping[str, Any], columns: sa.Table) -> dict[str, Any]:
    out = dict(values)
    for column in columns.c:
        if isinstance(column.type, sa.DateTime) and out.get(column.name) is not None:
            out[column.name] = to_utc(out[column.name])
    return out


def user_from(row: Any) -> User:
    """From a row of `users` (extra selected columns are ignored)."""
    data = _aware({k: v for k, v in row._mapping.items() if k in users.c}, users)
    data["blocked"] = bool(data["blocked"])
    data["banned"] = bool(data.get("banned", False))
    return User(**data)


def generation_from(row: Any) -> Generation:
    data = _aware(row._mapping, generations)
    data["result_urls"] = list(data.get("result_urls") or [])
    data["stored_paths"] = tuple(data.get("stored_paths") or ())
    data["options"] = dict(data.get("options") or {})
    data["prompt"] = data.get("prompt") or ""
    return Generation(**data)


def ledger_from(row: Any) -> LedgerEntry:
    """From a row of `credit_ledger` (extra selected columns are ignored)."""
    return LedgerEntry(**_aware({k: v for k, v in row._mapping.items() if k in credit_ledger.c},
                                credit_ledger))


def payment_from(row: Any) -> Payment:
    return Payment(**_aware(row._mapping, payments))


async def _one_turn() -> None:
    await asyncio.sleep(0)


class RepositoryBase:
    def __init__(self, engine: AsyncEngine, *,
                 turn: Callable[[], Awaitable[None]] | None = None) -> None:
        """`turn`: what an inline SQLite transaction awaits first, so that other tasks and
        HTTP answers get the loop between transactions (default: one loop turn; the app
        passes bot.loop_share.LoopShare.turn, which yields only once a turn's share of
        background work is spent)."""
        self._engine = engine
        self._turn = turn or _one_turn
        self._reader = read_only(engine)
        self._snapshot_reader = read_only(engine, snapshot=True)
        self._write_lock = write_lock(engine)
        self._inline = inline_sqlite(engine)
        self._postgres = is_postgres(engine)
        # Postgres reached directly: for a write that is one statement (no BEGIN/COMMIT);
        # None elsewhere.
        self._autocommit = autocommit_writer(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._engine.dialect.name})"

    @asynccontextmanager
    async def _tx(self, *, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction that may write; database failures come out as typed StorageErrors.
        On SQLite, writers of this process queue on storage.db.write_lock first; `urgent`
        (an HTTP acknowledgement waits on this write) goes ahead of the pipeline's writes."""
        if self._write_lock is None:
            async with self._transaction(self._engine) as conn:
                yield conn
            return
        if self._inline is not None and not urgent:
            # Inline transactions never suspend: a turn of the loop first, so a caller running
            # transactions back to back still lets HTTP answers and other tasks in between —
            # taken before queueing, so the write lock is never held across it. An urgent one
            # (an HTTP answer waits on it) goes at once.
            await self._turn()
        async with self._write_lock.hold(urgent=urgent), \
                self._transaction(self._engine, urgent=urgent) as conn:
            yield conn

    def _read(self, *, snapshot: bool = False, scan: bool = False) -> Any:
        """Reading only: on SQLite it does not take the write lock (see storage.db.read_only),
        so reads go on while a writer holds it; each statement sees its own snapshot unless
        `snapshot=True` (one read transaction for statements that must agree). Never write.
        `scan=True` for reads over whole tables (metrics, admin statistics, the ledger check):
        on SQLite they run in aiosqlite's thread rather than inline, so a scan of a large
        database never holds up the event loop."""
        mode = "snapshot" if snapshot else "read"
        engine = self._snapshot_reader if snapshot else self._reader
        return self._transaction(engine, mode=mode, inline=not scan)

    @asynccontextmanager
    async def _transaction(self, engine: AsyncEngine, *, mode: str = "write",
                           inline: bool = True, urgent: bool = False) -> AsyncIterator[Any]:
        """On file-backed SQLite the transaction runs inline on the loop (storage/inline_sqlite.py:
        an eighth of aiosqlite's CPU per statement); `mode` is write, read or snapshot there."""
        try:
            if self._inline is not None and inline:
                if mode != "write":
                    await self._turn()  # as in _tx
                async with self._inline.transaction(  # type: ignore[arg-type]
                        mode, urgent=urgent) as inline_conn:
                    yield inline_conn
                return
            async with begin(engine) as conn:
                yield conn
        except StorageError:
            raise
        except _DATABASE_ERRORS as exc:
            raise self._storage_error(exc) from exc

    async def _direct(self, statement: Any, params: Mapping[str, Any], *,
                      prelude: str | None = None) -> list[Any]:
        """The rows of one statement run straight on asyncpg (storage/direct.py): in autocommit,
        or in a transaction after `prelude` (literal SQL). Only on Postgres reached directly
        (`self._autocommit` is set). Failures come out as the same typed StorageErrors as a
        transaction's."""
        try:
            if prelude is None:
                return await direct.fetch(self._engine, statement, params)
            return await direct.fetch_in_transaction(self._engine, prelude, statement, params)
        except _DRIVER_ERRORS as exc:
            raise self._storage_error(exc) from exc

    async def _read_rows(self, statement: Any, params: Mapping[str, Any]) -> list[Any]:
        """The rows of one read: straight on asyncpg where it can (_direct), else _read()."""
        if self._autocommit is not None:
            return await self._direct(statement, params)
        async with self._read() as conn:
            return list((await conn.execute(statement, params)).all())

    def _storage_error(self, exc: BaseException) -> StorageError:
        if isinstance(exc, (sa_exc.IntegrityError, asyncpg.IntegrityConstraintViolationError)):
            return StorageError(f"constraint violated: {self._describe(exc)}")
        if isinstance(exc, (sa_exc.DataError, asyncpg.DataError)):
            return InvalidFieldError(f"value rejected by the database: {self._describe(exc)}")
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                            sa_exc.DisconnectionError, sa_exc.ResourceClosedError,
                            *direct.CONNECTION_LOST)):
            return DatabaseUnavailableError(f"database unavailable: {self._describe(exc)}")
        return StorageError(f"database error: {self._describe(exc)}")

    def _describe(self, exc: BaseException) -> str:
        orig = getattr(exc, "orig", None) or exc
        first_line = (str(orig).strip().splitlines() or [""])[0][:300]
        password = self._engine.url.password
        if password:
            first_line = first_line.replace(str(password), "***")
        return f"{type(orig).__name__}: {first_line}" if first_line else type(orig).__name__

    @staticmethod
    async def _insert_once(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING RETURNING id: False when a unique index says the
        row already exists (storage.dialect.insert_new). Under READ COMMITTED a concurrent
        duplicate waits for the first writer and then inserts nothing, so the caller sees
        "already done" without a partial write. One statement where SAVEPOINT + INSERT +
        RELEASE took three (and a failed insert a ROLLBACK TO as well)."""
        statement = insert_once(conn.dialect.name, table)
        return (await conn.execute(statement, values)).first() is not None
