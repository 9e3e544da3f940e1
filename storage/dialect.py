"""The only dialect-specific SQL in storage: how a batch of rows is claimed with a lease, and
an INSERT that skips a row already there (ON CONFLICT DO NOTHING; both dialects spell it alike
but SQLAlchemy builds it per dialect).

Postgres: SELECT ... FOR UPDATE SKIP LOCKED picks rows no other transaction holds, then an
UPDATE stamps the lease in the same transaction, so concurrent workers get disjoint batches
without waiting on each other. SQLite has no row locks: every write transaction already holds
the database write lock (BEGIN IMMEDIATE, see storage/db.py), so a single
UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING is atomic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim_rows(
    conn: AsyncConnection,
    table: sa.Table,
    *,
    where: sa.ColumnElement[bool],
    order_by: Sequence[Any],
    limit: int,
    values: dict[str, Any],
) -> list[sa.Row]:
    pick = sa.select(table.c.id).where(where).order_by(*order_by).limit(limit)
    if conn.dialect.name == "postgresql":
        ids = list((await conn.execute(pick.with_for_update(skip_locked=True))).scalars())
        if not ids:
            return []
        target = table.c.id.in_(ids)
    else:
        target = table.c.id.in_(pick.scalar_subquery())
    result = await conn.execute(sa.update(table).where(target).values(**values).returning(*table.c))
    return list(result)


def insert_new(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: a row only when it was inserted. One
    statement where a SAVEPOINT + INSERT + RELEASE took three."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
