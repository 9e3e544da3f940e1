"""The generation lifecycle: start (charge), forward-only transitions, fail/cancel (refund),
leases for background jobs, and the read models for the library and admin stats."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.dialect import claim_rows
from storage.errors import InFlightLimitError, InvalidFieldError
from storage.media import MediaStoreError, validate_object_path
from storage.models import (
    ALLOWED_MOVES,
    FINAL_STATUSES,
    NON_FINAL_STATUSES,
    Generation,
    GenerationStatus,
    Stage,
    StartResult,
)
from storage.repository._base import (
    check_amount,
    check_id,
    check_stage,
    check_status,
    check_text,
    generation_from,
    status_in,
    to_utc,
    utcnow,
)
from storage.repository._money import IN_FLIGHT, MoneyRepository
from storage.schema import credit_ledger, generations, users

TRANSITION_FIELDS = frozenset({
    "task_id", "kie_state", "fail_code", "error", "result_urls", "stored_paths", "preview_url",
    "submitted_at", "completed_at", "poll_attempts", "next_poll_at", "progress_message_id",
})
UPDATE_FIELDS = frozenset({
    "kie_state", "poll_attempts", "next_poll_at", "progress_message_id", "callback_received_at",
})
QUEUED, SUCCEEDED, FAILED = GenerationStatus.queued, GenerationStatus.succeeded, GenerationStatus.failed


def _fields(fields: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidFieldError(f"fields not allowed here: {', '.join(sorted(unknown))}")
    out = dict(fields)
    for name, value in out.items():
        if name.endswith("_at"):
            out[name] = to_utc(value)
    if "result_urls" in out and out["result_urls"] is not None:
        out["result_urls"] = [str(u) for u in out["result_urls"]]
    if "stored_paths" in out:
        out["stored_paths"] = _paths(out["stored_paths"])
    return out


def _paths(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidFieldError("stored_paths must be a list of object paths")
    try:
        return [validate_object_path(path) for path in value]
    except MediaStoreError as exc:
        raise InvalidFieldError(f"stored_paths: {exc}") from None


class LifecycleRepository(MoneyRepository):
    async def start_generation(
        self,
        *,
        user_id: int,
        chat_id: int,
        model_key: str,
        kind: str,
        cost: int,
        options: dict[str, Any],
        request_key: str,
        prompt: str = "",
        max_in_flight: int | None = None,
        deadline_at: datetime | None = None,
        now: datetime | None = None,
    ) -> StartResult:
        """Charge and insert a queued generation in one transaction. A repeated request_key
        returns the existing row without charging again. The prompt is its own column; options
        are the model's options (and the service's underscored keys), never the prompt."""
        check_id("user_id", user_id)
        check_id("chat_id", chat_id)
        check_text("model_key", model_key, max_length=64)
        check_text("kind", kind, max_length=16)
        check_text("request_key", request_key, max_length=128)
        check_amount("cost", cost, allow_zero=True)
        if max_in_flight is not None:
            check_amount("max_in_flight", max_in_flight)
        if not isinstance(options, dict):
            raise InvalidFieldError("options must be a dict")
        if "prompt" in options:
            raise InvalidFieldError("the prompt is a column of its own: pass prompt=, not options")
        if not isinstance(prompt, str):
            raise InvalidFieldError("prompt must be a string")
        now = to_utc(now) or utcnow()
        deadline_at = to_utc(deadline_at)
        async with self._tx() as conn:
            # The user row lock serialises this user's starts, so the request_key lookup and
            # the in-flight count below cannot race with a twin request.
            await self._lock_user(conn, user_id)
            existing = (
                await conn.execute(
                    sa.select(generations).where(
                        generations.c.user_id == user_id, generations.c.request_key == request_key
                    )
                )
            ).first()
            if existing is not None:
                return StartResult(generation_from(existing), created=False)
            if max_in_flight is not None:
                in_flight = await conn.scalar(
                    sa.select(sa.func.count()).select_from(generations)
                    .where(generations.c.user_id == user_id, IN_FLIGHT)
                )
                if in_flight >= max_in_flight:
                    raise InFlightLimitError(max_in_flight)
            if cost > 0:
                await self._debit(conn, user_id, cost)
            row = (
                await conn.execute(
                    sa.insert(generations).values(
                        user_id=user_id, chat_id=chat_id, status=QUEUED.value, kind=kind,
                        model_key=model_key, options=options, prompt=prompt, result_urls=[],
                        stored_paths=[], cost=cost,
                        request_key=request_key, poll_attempts=0, deadline_at=deadline_at,
                        created_at=now, updated_at=now,
                    ).returning(*generations.c)
                )
            ).one()
            generation = generation_from(row)
            if cost > 0:
                await conn.execute(
                    sa.insert(credit_ledger).values(
                        user_id=user_id, delta=-cost, reason="spend",
                        generation_id=generation.id, created_at=now,
                    )
                )
            return StartResult(generation, created=True)

    async def fail_generation(
        self, generation_id: int, *, error: str, fail_code: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Any non-final status → failed, refunding the charge once. False if already final
        (or unknown)."""
        check_id("generation_id", generation_id)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            return await self._fail(
                conn, generation_id, NON_FINAL_STATUSES, now=now, error=error, fail_code=fail_code
            )

    async def cancel_generation(self, generation_id: int, *, user_id: int, now: datetime | None = None) -> bool:
        """The owner cancels while still queued; refunded like any failure."""
        check_id("generation_id", generation_id)
        check_id("user_id", user_id)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            # kie_state set means a createTask may be in flight: too late to cancel.
            return await self._fail(
                conn, generation_id, {QUEUED}, now=now, error="cancelled",
                extra=sa.and_(generations.c.user_id == user_id, generations.c.kie_state.is_(None)),
            )

    async def mark_submitting(self, generation_id: int, *, kie_state: str) -> bool:
        """Record the intent to call createTask, only on a `queued` row nobody marked yet.
        False means the row was cancelled (or marked) meanwhile: do not create a task."""
        check_id("generation_id", generation_id)
        check_text("kie_state", kie_state, max_length=32)
        g = generations.c
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(generations)
                .where(g.id == generation_id, g.status == QUEUED.value, g.kie_state.is_(None))
                .values(kie_state=kie_state, updated_at=utcnow())
            )
            return result.rowcount == 1

    async def transition(
        self,
        generation_id: int,
        *,
        from_statuses: Iterable[GenerationStatus | str],
        to_status: GenerationStatus | str,
        now: datetime | None = None,
        **fields: Any,
    ) -> bool:
        """Compare-and-set the status forward. Moves outside ALLOWED_MOVES and rows not in
        from_statuses give False without writing. Moving to failed refunds (as fail_generation).
        Moving to succeeded must record `stored_paths` (the objects the storer wrote), so a
        succeeded row always says where its files are.
        The stage lease is dropped, and so is the old stage's "not before" (next_poll_at) unless
        the move sets a new one: the next stage claims the row afresh, at once."""
        check_id("generation_id", generation_id)
        to_status = check_status(to_status)
        sources = {check_status(s) for s in from_statuses} & ALLOWED_MOVES.get(to_status, frozenset())
        values = _fields(fields, TRANSITION_FIELDS)
        if to_status == SUCCEEDED and not values.get("stored_paths"):
            raise InvalidFieldError("a move to succeeded needs the stored_paths of the results")
        now = to_utc(now) or utcnow()
        if not sources:
            return False
        values.setdefault("next_poll_at", None)
        async with self._tx() as conn:
            if to_status == FAILED:
                return await self._fail(conn, generation_id, sources, now=now, **values)
            if to_status in FINAL_STATUSES:
                values.setdefault("completed_at", now)
            result = await conn.execute(
                sa.update(generations)
                .where(generations.c.id == generation_id, status_in(sources))
                .values(status=to_status.value, updated_at=now, lease_owner=None, lease_until=None,
                        **values)
            )
            return result.rowcount == 1

    async def update_fields(self, generation_id: int, **fields: Any) -> bool:
        """Bookkeeping that does not change the status. False when the row does not exist."""
        check_id("generation_id", generation_id)
        values = _fields(fields, UPDATE_FIELDS)
        if not values:
            raise InvalidFieldError("update_fields needs at least one field")
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(generations).where(generations.c.id == generation_id)
                .values(updated_at=utcnow(), **values)
            )
            return result.rowcount == 1

    async def _fail(
        self, conn: AsyncConnection, generation_id: int, sources: Iterable[GenerationStatus], *,
        now: datetime, extra: sa.ColumnElement[bool] | None = None, **values: Any,
    ) -> bool:
        # The conditional UPDATE is the gate: under READ COMMITTED a concurrent second failer
        # blocks on the row, re-reads the status, and matches nothing.
        condition = sa.and_(generations.c.id == generation_id, status_in(sources))
        if extra is not None:
            condition = sa.and_(condition, extra)
        values.setdefault("completed_at", now)
        # A failed row is delivered next: whatever poll or deferral it was waiting for is over.
        values.setdefault("next_poll_at", None)
        row = (
            await conn.execute(
                sa.update(generations).where(condition)
                .values(status=FAILED.value, updated_at=now, lease_owner=None, lease_until=None,
                        **values)
                .returning(generations.c.user_id, generations.c.cost)
            )
        ).first()
        if row is None:
            return False
        user_id, cost = int(row.user_id), int(row.cost)
        if cost > 0:
            spent = await conn.scalar(
                sa.select(sa.func.count()).select_from(credit_ledger).where(
                    credit_ledger.c.generation_id == generation_id, credit_ledger.c.reason == "spend"
                )
            )
            if spent:
                await self._credit(
                    conn, user_id, cost, reason="refund", generation_id=generation_id, now=now
                )
        return True

    # -- leases ------------------------------------------------------------------------------

    async def claim(
        self, stage: Stage | str, *, owner: str, lease_seconds: float, limit: int,
        now: datetime | None = None,
    ) -> list[Generation]:
        """Lease up to `limit` rows ready for `stage` whose lease is free or expired."""
        stage = check_stage(stage)
        check_text("owner", owner, max_length=128)
        check_amount("limit", limit)
        if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, int | float) or lease_seconds <= 0:
            raise InvalidFieldError("lease_seconds must be a positive number")
        now = to_utc(now) or utcnow()
        g = generations.c
        free = sa.or_(g.lease_until.is_(None), g.lease_until <= now)
        # next_poll_at doubles as "not before" for every stage: a row whose work was deferred
        # (file host down, unreadable file, Telegram unreachable) waits its turn and goes to the
        # back, so it can neither spin a stage nor starve the rows behind it.
        due = sa.or_(g.next_poll_at.is_(None), g.next_poll_at <= now)
        order: list[Any] = [g.next_poll_at.asc().nulls_first(), g.id]
        if stage == Stage.submit:
            ready = sa.and_(g.status == QUEUED.value, due)
        elif stage == Stage.poll:
            ready = sa.and_(
                status_in({GenerationStatus.generating, GenerationStatus.submit_unknown}), due
            )
        elif stage == Stage.store:
            ready = sa.and_(g.status == GenerationStatus.storing.value, due)
        elif stage == Stage.deliver:
            blocked = sa.select(users.c.id).where(users.c.id == g.user_id, users.c.blocked.is_(True))
            ready = sa.and_(
                status_in(FINAL_STATUSES), g.delivered_at.is_(None), ~blocked.exists(), due
            )
        else:
            ready = sa.and_(
                status_in(NON_FINAL_STATUSES), g.deadline_at.is_not(None), g.deadline_at <= now
            )
        async with self._tx() as conn:
            rows = await claim_rows(
                conn, generations, where=sa.and_(ready, free), order_by=order, limit=limit,
                values={"lease_owner": owner, "lease_until": now + timedelta(seconds=lease_seconds)},
            )
        claimed = [generation_from(r) for r in rows]
        return sorted(claimed, key=lambda gen: gen.id)

    async def release(self, generation_id: int, *, owner: str) -> bool:
        check_id("generation_id", generation_id)
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(generations)
                .where(generations.c.id == generation_id, generations.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )
            return result.rowcount == 1

    async def renew_lease(self, generation_id: int, *, owner: str, lease_seconds: float,
                          now: datetime | None = None) -> bool:
        """Extend `owner`'s lease on the row to now + lease_seconds. False (no write) when the
        row is no longer `owner`'s: another process claimed it after the lease ran out, or a
        transition dropped it. A lease that ran out but was not taken is still ours."""
        check_id("generation_id", generation_id)
        check_text("owner", owner, max_length=128)
        if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, int | float) or lease_seconds <= 0:
            raise InvalidFieldError("lease_seconds must be a positive number")
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(generations)
                .where(generations.c.id == generation_id, generations.c.lease_owner == owner)
                .values(lease_until=now + timedelta(seconds=lease_seconds))
            )
            return result.rowcount == 1

    async def mark_delivered(self, generation_id: int, now: datetime | None = None) -> bool:
        """Record delivery of a final generation; True only the first time."""
        check_id("generation_id", generation_id)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(generations)
                .where(
                    generations.c.id == generation_id,
                    generations.c.delivered_at.is_(None),
                    status_in(FINAL_STATUSES),
                )
                .values(delivered_at=now, updated_at=now, lease_owner=None, lease_until=None)
            )
            return result.rowcount == 1
