"""One statement straight on the Postgres driver (asyncpg), on a connection of SQLAlchemy's pool.

For the few statements every Telegram update runs (the user's row, a signup, the balance screen)
SQLAlchemy's execution layers cost more CPU than the round trip itself: a one-row read by primary
key took 390 µs of the bot's CPU through them and 180 µs this way (checkout, asyncpg's prepared
statement, return), and under a crowd of updates on Postgres the bot is bound by its own CPU.

What stays SQLAlchemy's: the statement (a Core construct, compiled once per dialect with its
bind processors, as storage/repository/_prepared.py DriverMany does for SQLite), the pool (the
same connections, checkout events and idle pings, size and overflow) and the error types the
repository maps (storage/repository/_base.py). What is skipped: the cursor adapter, the result
machinery and the greenlet per statement. Only for Postgres reached directly: asyncpg runs the
statement in autocommit, and its prepared-statement cache is off through a transaction pooler,
where the repository keeps SQLAlchemy's path (see storage/db.py read_only)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import greenlet_spawn

# The driver's failures that mean the connection is gone or in an unknown state (a server that
# dropped it can surface as an internal client error: "another operation is in progress").
CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                   asyncpg.InternalClientError, asyncpg.exceptions.FatalPostgresError, OSError,
                   TimeoutError)


def connection_survives(exc: BaseException) -> bool:
    """Only the server's refusal of a statement (a constraint, bad data...) leaves the
    connection as it was; after anything else — a lost connection, a client error, a
    cancellation mid-statement — it is not pooled again."""
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, CONNECTION_LOST)


@dataclass(frozen=True)
class DriverSQL:
    """A statement as the driver takes it: SQL with $n placeholders, the parameter name of each,
    the bind processors of those that have one, and the values the statement itself binds."""

    sql: str
    names: tuple[str, ...]
    processors: Mapping[str, Any]
    literals: Mapping[str, Any]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for name in self.names:
            value = params[name] if name in params else self.literals[name]
            processor = self.processors.get(name)
            out.append(value if processor is None or value is None else processor(value))
        return out


_COMPILED: dict[tuple[int, str], tuple[Any, DriverSQL]] = {}


def driver_sql(statement: Any, dialect: Any) -> DriverSQL:
    """`statement` compiled for `dialect`, once (the statements are module-level constants; the
    cache holds each so its id cannot be reused)."""
    key = (id(statement), dialect.name)
    found = _COMPILED.get(key)
    if found is not None:
        return found[1]
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    processors = {}
    for name in set(names):
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    literals = {name: value for name, value in compiled.params.items()
                if not compiled.binds[name].required}  # what the statement binds itself
    out = DriverSQL(compiled.string, names, processors, literals)
    _COMPILED[key] = (statement, out)
    return out


class DriverRow:
    """An asyncpg Record read like SQLAlchemy's Row: `row.column` and `row._mapping`."""

    __slots__ = ("_mapping",)

    def __init__(self, record: asyncpg.Record) -> None:
        self._mapping = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


@contextlib.asynccontextmanager
async def pooled_driver(engine: AsyncEngine, *,
                        discard_on_error: bool = False) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection checked out of `engine`'s pool (its checkout events run: idle
    connections are pinged) and returned to it; discarded unless it failed with the server's
    refusal of a statement (connection_survives), and on any failure when `discard_on_error`
    (a transaction was open)."""
    proxied = await greenlet_spawn(engine.sync_engine.raw_connection)
    try:
        yield proxied.driver_connection
    except BaseException as exc:
        if discard_on_error or not connection_survives(exc):
            proxied.invalidate()
        raise
    finally:
        await greenlet_spawn(proxied.close)


async def fetch(engine: AsyncEngine, statement: Any, params: Mapping[str, Any]) -> list[DriverRow]:
    """The rows of one statement run in autocommit on a pooled connection."""
    compiled = driver_sql(statement, engine.dialect)
    async with pooled_driver(engine) as conn:
        records = await conn.fetch(compiled.sql, *compiled.args(params))
    return [DriverRow(r) for r in records]


async def fetch_in_transaction(engine: AsyncEngine, prelude: str, statement: Any,
                               params: Mapping[str, Any]) -> list[DriverRow]:
    """The rows of `statement` run in a transaction opened together with `prelude` (literal
    SQL, e.g. taking an advisory lock) in one round trip, then committed: three round trips
    where SQLAlchemy's BEGIN, prelude, statement, COMMIT take four. Any failure, cancellation
    included, discards the connection (the server rolls back as it goes), so a connection
    never returns to the pool inside a transaction."""
    compiled = driver_sql(statement, engine.dialect)
    async with pooled_driver(engine, discard_on_error=True) as conn:
        await conn.execute(f"BEGIN; {prelude}")
        records = await conn.fetch(compiled.sql, *compiled.args(params))
        await conn.execute("COMMIT")
    return [DriverRow(r) for r in records]
