"""The Telegram update inbox (bot/inbox.py writes and drains it): durable before acknowledged,
deduplicated by update_id, claimed per chat with a lease, marked handled in batches, pruned."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from storage.dialect import (
    INBOX_CLAIM_LOCK,
    claim_inbox,
    inbox_claim_statement,
    insert_ignoring_duplicates,
    insert_new_keys,
)
from storage.repository._base import RepositoryBase, check_text, to_utc, utcnow
from storage.schema import updates_inbox

# Postgres: handled updates marked in one statement whatever their number (= ANY of an array).
MARK_HANDLED_PG = (
    sa.update(updates_inbox)
    .where(updates_inbox.c.update_id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.BigInteger))),
           updates_inbox.c.handled_at.is_(None))
    .values(handled_at=sa.bindparam("now", type_=updates_inbox.c.handled_at.type),
            lease_owner=None, lease_until=None)
    .returning(updates_inbox.c.update_id)
)

INSERT_CHUNK = 512  # rows per INSERT at most: 5 bound values each, far under SQLite's variable limit


def chunk_sizes(n: int) -> list[int]:
    """`n` rows as INSERTs of power-of-two sizes, largest first (37 → 32, 4, 1).

    Each row count is a statement of its own to SQLAlchemy: a batch of every size from 1 to 500
    would compile 500 statements and push the hot ones (the user lookup every update runs) out of
    the engine's 500-entry compiled cache, which profiling showed recompiling under a crowd.
    Powers of two keep it to ten shapes at a cost of at most log2(n) statements per batch."""
    sizes = []
    while n > 0:
        size = min(INSERT_CHUNK, 1 << (n.bit_length() - 1))
        sizes.append(size)
        n -= size
    return sizes


@dataclass(frozen=True)
class InboxUpdate:
    update_id: int
    chat_key: int | None
    payload: str  # the update's JSON as Telegram sent it
    attempts: int  # claims so far, this one included


class InboxRepository(RepositoryBase):
    async def inbox_add(self, updates: Sequence[tuple[int, int | None, str]], *,
                        now: datetime | None = None) -> int:
        """Store (update_id, chat_key, payload) rows in one transaction; an update_id already
        stored (Telegram's redelivery) is skipped. Returns how many were new."""
        if not updates:
            return 0
        now = to_utc(now) or utcnow()
        rows = {}
        for update_id, chat_key, payload in updates:
            rows.setdefault(int(update_id), {
                "update_id": int(update_id), "chat_key": chat_key, "payload": payload,
                "received_at": now, "attempts": 0,
            })
        values = list(rows.values())
        added = 0
        async with self._tx(urgent=True) as conn:  # Telegram's 200 waits on it
            if self._postgres:
                # One executemany of a statement compiled once (insertmanyvalues batches it
                # into multi-row INSERTs); RETURNING counts the rows that were new.
                result = await conn.execute(
                    insert_new_keys(conn, updates_inbox, key="update_id"), values)
                return len(result.all())
            # Multi-row INSERTs (not executemany: a rowcount both drivers report), in chunks of
            # a few fixed sizes so their compiled forms stay cached (chunk_sizes).
            start = 0
            for size in chunk_sizes(len(values)):
                statement = insert_ignoring_duplicates(
                    conn, updates_inbox, key="update_id", rows=values[start:start + size])
                start += size
                result = await conn.execute(statement)
                added += max(int(result.rowcount or 0), 0)
        return added

    async def inbox_claim(self, *, owner: str, lease_seconds: float, limit: int,
                          now: datetime | None = None) -> list[InboxUpdate]:
        """Lease up to `limit` unhandled updates, oldest first, never of a chat another owner
        holds (storage/dialect.py: claim_inbox)."""
        check_text("owner", owner, max_length=128)
        now = to_utc(now) or utcnow()
        until = now + timedelta(seconds=lease_seconds)
        if self._autocommit is not None:  # Postgres reached directly: straight on asyncpg
            rows = sorted(await self._direct(
                inbox_claim_statement(updates_inbox),
                {"owner": owner, "now": now, "until": until, "limit": limit},
                prelude=f"SELECT pg_advisory_xact_lock({INBOX_CLAIM_LOCK})"),
                key=lambda row: row.update_id)
        else:
            async with self._tx() as conn:
                rows = await claim_inbox(conn, updates_inbox, owner=owner, now=now,
                                         until=until, limit=limit)
        return [InboxUpdate(r.update_id, r.chat_key, r.payload, r.attempts) for r in rows]

    async def inbox_renew(self, *, owner: str, lease_seconds: float,
                          now: datetime | None = None) -> int:
        """Extend every lease `owner` holds on unhandled updates (a long handler keeps its chat)."""
        now = to_utc(now) or utcnow()
        t = updates_inbox.c
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(updates_inbox)
                .where(t.lease_owner == owner, t.handled_at.is_(None))
                .values(lease_until=now + timedelta(seconds=lease_seconds))
            )
            return int(result.rowcount or 0)

    async def inbox_mark_handled(self, update_ids: Iterable[int], *,
                                 now: datetime | None = None) -> int:
        ids = sorted({int(i) for i in update_ids})
        if not ids:
            return 0
        now = to_utc(now) or utcnow()
        if self._autocommit is not None:  # one statement: autocommit, straight on asyncpg
            return len(await self._direct(MARK_HANDLED_PG, {"ids": ids, "now": now}))
        t = updates_inbox.c
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(updates_inbox)
                .where(t.update_id.in_(ids), t.handled_at.is_(None))
                .values(handled_at=now, lease_owner=None, lease_until=None)
            )
            return int(result.rowcount or 0)

    async def inbox_release(self, *, owner: str) -> int:
        """Hand back every unhandled update `owner` holds (shutdown): the next claimer gets
        them at once instead of after the lease."""
        t = updates_inbox.c
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(updates_inbox)
                .where(t.lease_owner == owner, t.handled_at.is_(None))
                .values(lease_owner=None, lease_until=None)
            )
            return int(result.rowcount or 0)

    async def inbox_prune(self, *, handled_before: datetime) -> int:
        """Delete handled updates older than `handled_before` (kept until then so Telegram's
        redeliveries still find them)."""
        t = updates_inbox.c
        async with self._tx() as conn:
            result = await conn.execute(
                sa.delete(updates_inbox)
                .where(t.handled_at.is_not(None), t.handled_at < to_utc(handled_before))
            )
            return int(result.rowcount or 0)

    async def inbox_unhandled(self) -> int:
        """How many updates wait or are being handled (health, tests settling)."""
        async with self._tx() as conn:
            return int(await conn.scalar(
                sa.select(sa.func.count()).select_from(updates_inbox)
                .where(updates_inbox.c.handled_at.is_(None))
            ))
