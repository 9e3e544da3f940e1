"""Watching the statements a repository sends, for tests that count round trips or writes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from sqlalchemy import event

from storage.db import is_postgres, statement_engines


@contextlib.asynccontextmanager
async def statements_sent(engine, record: Callable[[str], None]) -> AsyncIterator[None]:
    """Calls `record(sql)` for each statement `engine` runs while the block runs: SQLAlchemy's
    cursor events, and on Postgres asyncpg's query logger on every connection checked out, which
    sees what storage/direct.py runs straight on the driver (and asyncpg's own BEGIN and COMMIT,
    but not SQLAlchemy's prepared statements, which the cursor events see)."""

    def cursor(conn, cursor, statement, parameters, context, executemany) -> None:
        record(statement)

    def log(query) -> None:
        record(query.query)

    def checkout(dbapi_connection, _record, _proxy) -> None:
        dbapi_connection.driver_connection.add_query_logger(log)

    def checkin(dbapi_connection, _record) -> None:
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.remove_query_logger(log)

    sync_engines = statement_engines(engine)
    pool = engine.sync_engine.pool
    for sync_engine in sync_engines:
        event.listen(sync_engine, "before_cursor_execute", cursor)
    if is_postgres(engine):
        event.listen(pool, "checkout", checkout)
        event.listen(pool, "checkin", checkin)
    try:
        yield
        await asyncio.sleep(0)  # asyncpg hands its log records over with call_soon
    finally:
        for sync_engine in sync_engines:
            event.remove(sync_engine, "before_cursor_execute", cursor)
        if is_postgres(engine):
            event.remove(pool, "checkout", checkout)
            event.remove(pool, "checkin", checkin)
