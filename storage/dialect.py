"""The only dialect-specific SQL in storage: how a batch of rows is claimed with a lease, how
the update inbox is claimed per chat, and INSERT ... ON CONFLICT DO NOTHING (both dialects spell
it alike but SQLAlchemy builds it per dialect).

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


# Postgres: claims of the inbox take this transaction-level advisory lock, so two processes'
# claims run one after the other and the second sees the first's leases (row locks alone would
# let it take chat A's second update while the first holds chat A's first).
INBOX_CLAIM_LOCK = 0x6B6965626F7401  # "kiebot" + 1


def _insert(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_ignoring_duplicates(conn: AsyncConnection, table: sa.Table, *, key: str,
                               rows: list[dict[str, Any]]) -> Any:
    """INSERT ... VALUES (rows) ON CONFLICT (key) DO NOTHING for this connection's dialect."""
    return _insert(conn)(table).values(rows).on_conflict_do_nothing(index_elements=[key])


_NEW_KEYS: dict[tuple[str, str, str], Any] = {}


def insert_new_keys(conn: AsyncConnection, table: sa.Table, *, key: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key, built once per dialect and table,
    for executemany with a list of rows: SQLAlchemy's insertmanyvalues sends it as multi-row
    INSERTs from one cached compiled form (a multi-row .values(rows) has no cache key and is
    compiled afresh every time) and returns one row per row inserted."""
    cache_key = (conn.dialect.name, table.name, key)
    statement = _NEW_KEYS.get(cache_key)
    if statement is None:
        statement = _NEW_KEYS[cache_key] = (
            _insert(conn)(table).on_conflict_do_nothing(index_elements=[key])
            .returning(table.c[key]))
    return statement


def insert_new(conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: a row only when it was inserted. One
    statement where a SAVEPOINT + INSERT + RELEASE took three."""
    return _insert(conn)(table).values(**values).on_conflict_do_nothing().returning(table.c.id)


_INBOX_CLAIMS: dict[str, Any] = {}


def inbox_claim_statement(table: sa.Table) -> Any:
    """UPDATE ... RETURNING that leases up to :limit unhandled updates of `table` to :owner
    until :until, oldest first, skipping every chat that has an unhandled update leased (live at
    :now) by another owner: one chat is never in two processes at once. A chat whose earlier
    update this owner holds stays claimable by it (it queues them in order). Built once per
    table; on Postgres it must run after INBOX_CLAIM_LOCK is taken in the same transaction."""
    statement = _INBOX_CLAIMS.get(table.name)
    if statement is not None:
        return statement
    now, owner = sa.bindparam("now", type_=table.c.lease_until.type), sa.bindparam("owner")
    mine = table.alias("mine")
    other = table.alias("other")
    busy = sa.exists().where(
        other.c.chat_key == mine.c.chat_key,
        other.c.handled_at.is_(None),
        other.c.lease_until >= now,
        other.c.lease_owner != owner,
    )
    pick = (
        sa.select(mine.c.update_id)
        .where(mine.c.handled_at.is_(None),
               sa.or_(mine.c.lease_until.is_(None), mine.c.lease_until < now),
               ~busy)
        .order_by(mine.c.update_id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    statement = _INBOX_CLAIMS[table.name] = (
        sa.update(table).where(table.c.update_id.in_(pick.scalar_subquery()))
        .values(lease_owner=owner,
                lease_until=sa.bindparam("until", type_=table.c.lease_until.type),
                attempts=table.c.attempts + 1)
        .returning(*table.c)
    )
    return statement


async def claim_inbox(
    conn: AsyncConnection,
    table: sa.Table,
    *,
    owner: str,
    now: Any,
    until: Any,
    limit: int,
) -> list[sa.Row]:
    """inbox_claim_statement run in the caller's transaction (with INBOX_CLAIM_LOCK first on
    Postgres), the claimed rows in update_id order."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(INBOX_CLAIM_LOCK)))
    result = await conn.execute(inbox_claim_statement(table),
                                {"owner": owner, "now": now, "until": until, "limit": limit})
    return sorted(result, key=lambda row: row.update_id)
