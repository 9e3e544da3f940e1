"""Broadcasts: an admin's message to a segment of users, sent by one worker at a time.

Exactly once per recipient is a property of the rows, not of the process: the recipients are
materialised when the admin confirms (one row per user), a row is claimed pending → sending in
the database before its message goes out (a compare-and-set, so two claimers never get the same
row), and its outcome is written after. A process that dies between the send and the write
leaves the row in "sending"; whoever takes the broadcast over next turns such rows into
"unknown" and never sends them again (a duplicate is worse than one missing message).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from storage.errors import InvalidFieldError
from storage.repository._base import RepositoryBase, check_id, check_text, to_utc, utcnow
from storage.schema import (
    BROADCAST_SEGMENTS,
    BROADCAST_STATES,
    RECIPIENT_STATES,
    broadcast_recipients,
    broadcasts,
    payments,
    users,
)

OUTCOMES = ("sent", "blocked", "failed", "pending")
MAX_DAYS = 3650
MAX_BALANCE = 10**9


@dataclass(frozen=True)
class Broadcast:
    id: int
    admin_id: int
    lang: str
    kind: str
    text: str | None
    entities: list[dict[str, Any]] | None
    photo: str | None
    button_text: str | None
    button_url: str | None
    segment: str
    segment_arg: str | None
    state: str
    card_message_id: int | None
    total: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    reported_at: datetime | None


def _broadcast_from(row: Any) -> Broadcast:
    m = row._mapping
    return Broadcast(
        id=int(m["id"]), admin_id=int(m["admin_id"]), lang=m["lang"], kind=m["kind"],
        text=m["text"], entities=m["entities"], photo=m["photo"],
        button_text=m["button_text"], button_url=m["button_url"], segment=m["segment"],
        segment_arg=m["segment_arg"], state=m["state"], card_message_id=m["card_message_id"],
        total=int(m["total"]), created_at=to_utc(m["created_at"]),
        started_at=to_utc(m["started_at"]), finished_at=to_utc(m["finished_at"]),
        reported_at=to_utc(m["reported_at"]))


def check_segment(segment: Any, arg: Any) -> str | None:
    """The segment's argument as stored; InvalidFieldError for anything else."""
    if segment not in BROADCAST_SEGMENTS:
        raise InvalidFieldError(f"unknown segment {segment!r}")
    if segment in ("all", "paying"):
        if arg is not None:
            raise InvalidFieldError(f"segment {segment} takes no argument")
        return None
    if segment == "lang":
        if arg not in ("en", "ru"):
            raise InvalidFieldError("segment lang takes en or ru")
        return arg
    limit = MAX_DAYS if segment == "active" else MAX_BALANCE
    low = 1 if segment == "active" else 0
    if isinstance(arg, bool) or not isinstance(arg, int) or not low <= arg <= limit:
        raise InvalidFieldError(f"segment {segment} takes a number {low}..{limit}")
    return str(arg)


def segment_filter(segment: str, arg: str | None, now: datetime) -> sa.ColumnElement[bool]:
    """Who a segment means. Never users who blocked the bot or are banned (a banned user gets
    one line and nothing else)."""
    cond = sa.and_(users.c.blocked == sa.false(), users.c.banned == sa.false())
    if segment == "active":
        return sa.and_(cond, users.c.last_seen_at >= now - timedelta(days=int(arg or 0)))
    if segment == "paying":  # a purchase that was not refunded
        return sa.and_(cond, sa.exists().where(payments.c.user_id == users.c.id,
                                               payments.c.refunded_at.is_(None)))
    if segment == "balance":
        return sa.and_(cond, users.c.balance >= int(arg or 0))
    if segment == "lang":  # stored languages are "en" and "ru" (NULL: English texts)
        if arg == "ru":
            return sa.and_(cond, users.c.language == "ru")
        return sa.and_(cond, sa.or_(users.c.language.is_(None), users.c.language != "ru"))
    return cond


def _lease_free(owner: str, now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(broadcasts.c.lease_owner.is_(None), broadcasts.c.lease_owner == owner,
                  broadcasts.c.lease_until < now)


class BroadcastRepository(RepositoryBase):
    async def count_segment(self, segment: str, arg: Any = None, *,
                            now: datetime | None = None) -> int:
        arg = check_segment(segment, arg)
        at = to_utc(now) or utcnow()
        async with self._read() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(users)
                                         .where(segment_filter(segment, arg, at))))

    async def create_broadcast(self, *, admin_id: int, lang: str, kind: str, text: str | None,
                               entities: list[dict[str, Any]] | None = None,
                               photo: str | None = None, button_text: str | None = None,
                               button_url: str | None = None, segment: str,
                               segment_arg: Any = None, now: datetime | None = None) -> Broadcast:
        """A draft: nothing is sent until start_broadcast."""
        check_id("admin_id", admin_id)
        arg = check_segment(segment, segment_arg)
        if kind == "text":
            check_text("text", text, max_length=4096)
            if photo is not None:
                raise InvalidFieldError("a text broadcast has no photo")
        elif kind == "photo":
            check_text("photo", photo, max_length=256)
            check_text("text", text, max_length=1024, optional=True)
        else:
            raise InvalidFieldError(f"unknown broadcast kind {kind!r}")
        if (button_text is None) != (button_url is None):
            raise InvalidFieldError("a button needs both its text and its URL")
        if button_text is not None:
            check_text("button_text", button_text, max_length=64)
            check_text("button_url", button_url, max_length=512)
        check_text("lang", lang, max_length=8)
        at = to_utc(now) or utcnow()
        async with self._tx() as conn:
            row = (await conn.execute(sa.insert(broadcasts).values(
                admin_id=admin_id, lang=lang, kind=kind, text=text, entities=entities,
                photo=photo, button_text=button_text, button_url=button_url, segment=segment,
                segment_arg=arg, state="draft", total=0, created_at=at)
                .returning(*broadcasts.c))).first()
        return _broadcast_from(row)

    async def get_broadcast(self, broadcast_id: int) -> Broadcast | None:
        check_id("broadcast_id", broadcast_id)
        async with self._read() as conn:
            row = (await conn.execute(sa.select(broadcasts)
                                      .where(broadcasts.c.id == broadcast_id))).first()
        return _broadcast_from(row) if row else None

    async def start_broadcast(self, broadcast_id: int, *, card_message_id: int | None = None,
                              now: datetime | None = None) -> bool:
        """draft → running with its recipients written in the same transaction (the segment as
        it is now). False (nothing written) unless the row was a draft: a second tap, or a
        replayed update, starts nothing twice."""
        check_id("broadcast_id", broadcast_id)
        at = to_utc(now) or utcnow()
        async with self._tx() as conn:
            moved = await conn.execute(
                sa.update(broadcasts).where(broadcasts.c.id == broadcast_id,
                                            broadcasts.c.state == "draft")
                .values(state="running", started_at=at, card_message_id=card_message_id))
            if moved.rowcount != 1:
                return False
            row = (await conn.execute(sa.select(broadcasts.c.segment, broadcasts.c.segment_arg)
                                      .where(broadcasts.c.id == broadcast_id))).one()
            chosen = sa.select(sa.literal(broadcast_id, sa.BigInteger), users.c.id,
                               sa.literal("pending")).where(
                segment_filter(row.segment, row.segment_arg, at))
            await conn.execute(sa.insert(broadcast_recipients).from_select(
                ["broadcast_id", "user_id", "state"], chosen))
            total = await conn.scalar(sa.select(sa.func.count()).select_from(broadcast_recipients)
                                      .where(broadcast_recipients.c.broadcast_id == broadcast_id))
            await conn.execute(sa.update(broadcasts).where(broadcasts.c.id == broadcast_id)
                               .values(total=int(total)))
        return True

    async def set_broadcast_state(self, broadcast_id: int, *, from_states: tuple[str, ...],
                                  to_state: str, now: datetime | None = None) -> bool:
        """Compare-and-set of the state (pause, resume, cancel); False when it was not in
        `from_states`."""
        check_id("broadcast_id", broadcast_id)
        if to_state not in BROADCAST_STATES or not set(from_states) <= set(BROADCAST_STATES):
            raise InvalidFieldError(f"unknown broadcast state {to_state!r}")
        values: dict[str, Any] = {"state": to_state}
        if to_state in ("cancelled", "done"):
            values["finished_at"] = to_utc(now) or utcnow()
        async with self._tx() as conn:
            moved = await conn.execute(
                sa.update(broadcasts).where(broadcasts.c.id == broadcast_id,
                                            broadcasts.c.state.in_(from_states)).values(**values))
            return moved.rowcount == 1

    async def claim_broadcast(self, *, owner: str, lease_seconds: float,
                              now: datetime | None = None) -> Broadcast | None:
        """The oldest broadcast with work for a worker (running, or finished and not reported
        yet) whose lease is free or `owner`'s; leased to `owner`. Its rows left in "sending"
        become "unknown": whoever claimed them may have sent them, so they are never resent."""
        at = to_utc(now) or utcnow()
        work = sa.or_(broadcasts.c.state == "running",
                      sa.and_(broadcasts.c.state.in_(("done", "cancelled")),
                              broadcasts.c.started_at.is_not(None),
                              broadcasts.c.reported_at.is_(None)))
        # A read first: the job asks every second or so, and an idle answer must not take
        # SQLite's write lock.
        async with self._read() as conn:
            if (await conn.scalar(sa.select(broadcasts.c.id).where(work, _lease_free(owner, at))
                                  .limit(1))) is None:
                return None
        async with self._tx() as conn:
            row = (await conn.execute(sa.select(broadcasts.c.id)
                                      .where(work, _lease_free(owner, at))
                                      .order_by(broadcasts.c.id).limit(1))).first()
            if row is None:
                return None
            took = await conn.execute(
                sa.update(broadcasts).where(broadcasts.c.id == row.id, work,
                                            _lease_free(owner, at))
                .values(lease_owner=owner, lease_until=at + timedelta(seconds=lease_seconds)))
            if took.rowcount != 1:
                return None
            # At the start of a pass no send of this broadcast is under way anywhere (the
            # lease was free, ran out, or is ours between passes): a row still in "sending" was
            # left by a process that died or a pass that failed, and may have reached its chat.
            await conn.execute(
                sa.update(broadcast_recipients)
                .where(broadcast_recipients.c.broadcast_id == row.id,
                       broadcast_recipients.c.state == "sending")
                .values(state="unknown", error="interrupted", updated_at=at))
            full = (await conn.execute(sa.select(broadcasts)
                                       .where(broadcasts.c.id == row.id))).one()
        return _broadcast_from(full)

    async def claim_recipients(self, broadcast_id: int, *, owner: str, lease_seconds: float,
                               limit: int, now: datetime | None = None) -> tuple[str, list[int]]:
        """(state, user ids): while the broadcast is running and leased to `owner`, renew the
        lease and move up to `limit` pending rows to "sending" (only rows this statement moved
        are returned). Otherwise (paused, cancelled, lease lost: state "lost") no rows."""
        check_id("broadcast_id", broadcast_id)
        at = to_utc(now) or utcnow()
        r = broadcast_recipients
        async with self._tx() as conn:
            renewed = await conn.execute(
                sa.update(broadcasts).where(broadcasts.c.id == broadcast_id,
                                            broadcasts.c.state == "running",
                                            broadcasts.c.lease_owner == owner)
                .values(lease_until=at + timedelta(seconds=lease_seconds)))
            if renewed.rowcount != 1:
                row = (await conn.execute(sa.select(broadcasts.c.state, broadcasts.c.lease_owner)
                                          .where(broadcasts.c.id == broadcast_id))).first()
                if row is None or row.lease_owner != owner:
                    return "lost", []
                return row.state, []
            ids = [int(i) for i in (await conn.execute(
                sa.select(r.c.user_id).where(r.c.broadcast_id == broadcast_id,
                                             r.c.state == "pending")
                .order_by(r.c.user_id).limit(limit))).scalars()]
            if not ids:
                return "running", []
            moved = await conn.execute(
                sa.update(r).where(r.c.broadcast_id == broadcast_id, r.c.state == "pending",
                                   r.c.user_id.in_(ids))
                .values(state="sending", updated_at=at).returning(r.c.user_id))
            return "running", sorted(int(i) for i in moved.scalars())

    async def mark_recipients(self, broadcast_id: int, outcomes: list[tuple[int, str, str | None]],
                              *, now: datetime | None = None) -> None:
        """Write each (user id, outcome, error) of rows this worker had in "sending" (or that a
        takeover marked "unknown" meanwhile: the real outcome is better). Outcome "pending"
        hands a row back (Telegram refused it with a flood wait: nothing reached the chat).
        A blocked recipient's user is marked blocked in the same transaction."""
        check_id("broadcast_id", broadcast_id)
        for _, outcome, _ in outcomes:
            if outcome not in OUTCOMES:
                raise InvalidFieldError(f"unknown recipient outcome {outcome!r}")
        if not outcomes:
            return
        at = to_utc(now) or utcnow()
        r = broadcast_recipients
        async with self._tx() as conn:
            await conn.execute(
                sa.update(r).where(r.c.broadcast_id == broadcast_id,
                                   r.c.user_id == sa.bindparam("uid"),
                                   sa.or_(r.c.state == "sending", r.c.state == "unknown"))
                .values(state=sa.bindparam("outcome"), error=sa.bindparam("err"), updated_at=at),
                [{"uid": u, "outcome": o, "err": (e or None) and e[:64]} for u, o, e in outcomes])
            blocked = [u for u, o, _ in outcomes if o == "blocked"]
            if blocked:
                await conn.execute(sa.update(users).where(users.c.id.in_(blocked))
                                   .values(blocked=True))

    async def finish_broadcast(self, broadcast_id: int, *, owner: str,
                               now: datetime | None = None) -> bool:
        """running → done once no row is pending or being sent; only by the lease holder."""
        check_id("broadcast_id", broadcast_id)
        r = broadcast_recipients
        left = sa.exists().where(r.c.broadcast_id == broadcast_id,
                                 r.c.state.in_(("pending", "sending")))
        async with self._tx() as conn:
            moved = await conn.execute(
                sa.update(broadcasts).where(broadcasts.c.id == broadcast_id,
                                            broadcasts.c.state == "running",
                                            broadcasts.c.lease_owner == owner, ~left)
                .values(state="done", finished_at=to_utc(now) or utcnow()))
            return moved.rowcount == 1

    async def mark_broadcast_reported(self, broadcast_id: int, *,
                                      now: datetime | None = None) -> bool:
        """Once per finished broadcast (True the first time): the final report goes out after
        this, so a crash in between loses the report rather than sending it twice."""
        check_id("broadcast_id", broadcast_id)
        async with self._tx() as conn:
            moved = await conn.execute(
                sa.update(broadcasts).where(broadcasts.c.id == broadcast_id,
                                            broadcasts.c.state.in_(("done", "cancelled")),
                                            broadcasts.c.reported_at.is_(None))
                .values(reported_at=to_utc(now) or utcnow(), lease_owner=None, lease_until=None))
            return moved.rowcount == 1

    async def release_broadcast(self, broadcast_id: int, *, owner: str) -> None:
        """Drop `owner`'s lease (between passes, with no row of its in "sending")."""
        check_id("broadcast_id", broadcast_id)
        async with self._tx() as conn:
            await conn.execute(sa.update(broadcasts).where(broadcasts.c.id == broadcast_id,
                                                           broadcasts.c.lease_owner == owner)
                               .values(lease_owner=None, lease_until=None))

    async def broadcast_counts(self, broadcast_id: int) -> dict[str, int]:
        """Recipients per state (every state present, zeros included)."""
        check_id("broadcast_id", broadcast_id)
        r = broadcast_recipients
        async with self._read() as conn:
            rows = await conn.execute(sa.select(r.c.state, sa.func.count())
                                      .where(r.c.broadcast_id == broadcast_id)
                                      .group_by(r.c.state))
            found = {state: int(n) for state, n in rows}
        return {state: found.get(state, 0) for state in RECIPIENT_STATES}

    async def broadcast_recipients_of(self, broadcast_id: int) -> dict[int, str]:
        """user id → state (tests and support)."""
        check_id("broadcast_id", broadcast_id)
        r = broadcast_recipients
        async with self._read() as conn:
            rows = await conn.execute(sa.select(r.c.user_id, r.c.state)
                                      .where(r.c.broadcast_id == broadcast_id))
            return {int(u): s for u, s in rows}
