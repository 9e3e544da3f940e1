"""The generation lifecycle: start (charge), forward-only transitions, fail/cancel (refund),
leases for background jobs, and the read models for the library and admin stats."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
from storage.repository._prepared import DriverMany
from storage.schema import credit_ledger, daily_free_uses, generations, users

TRANSITION_FIELDS = frozenset({
    "task_id", "kie_state", "fail_code", "error", "result_urls", "stored_paths", "preview_url",
    "submitted_at", "completed_at", "poll_attempts", "next_poll_at", "progress_message_id",
})
UPDATE_FIELDS = frozenset({
    "kie_state", "poll_attempts", "next_poll_at", "progress_message_id", "callback_received_at",
})
QUEUED, SUCCEEDED, FAILED = GenerationStatus.queued, GenerationStatus.succeeded, GenerationStatus.failed
GENERATING, SUBMIT_UNKNOWN = GenerationStatus.generating, GenerationStatus.submit_unknown
STORING = GenerationStatus.storing
# kie_state of a row moved to storing by a success callback's own result URLs (not confirmed by
# recordInfo): the storer asks recordInfo before giving up on a download of such a row.
CALLBACK_RESULTS = "success:callback"


class CallbackWrite(enum.Enum):
    """What Repository.accept_callback did."""

    storing = "storing"  # moved to storing with the callback's result URLs
    woken = "woken"  # due for the poller now (task id recorded if it was missing)
    nothing_to_do = "nothing_to_do"  # already storing or final: the callback is old news
    mismatch = "mismatch"  # the row belongs to another task
    unknown = "unknown"  # no such generation


@dataclass(frozen=True)
class CallbackNote:
    """One KIE callback to record (Repository.accept_callbacks)."""

    generation_id: int
    task_id: str
    kie_state: str | None
    result_urls: tuple[str, ...] | None = None  # a success body's own results


_EARLY = frozenset({QUEUED, SUBMIT_UNKNOWN})
_CALLBACK_OPEN = frozenset({QUEUED, GENERATING, SUBMIT_UNKNOWN})  # statuses a callback moves


def _plan_callback(note: CallbackNote, status: GenerationStatus, task_id: str | None
                   ) -> tuple[CallbackWrite, GenerationStatus]:
    """What accept_callback does to a row in (status, task_id): the outcome and new status."""
    if task_id is not None and task_id != note.task_id:
        return CallbackWrite.mismatch, status
    if status not in _CALLBACK_OPEN:
        return CallbackWrite.nothing_to_do, status
    if note.result_urls and status in (GENERATING, SUBMIT_UNKNOWN):
        return CallbackWrite.storing, STORING
    if status in _EARLY and task_id is None:
        return CallbackWrite.woken, GENERATING
    return CallbackWrite.woken, status


def _callback_statements() -> tuple[Any, Any]:
    """The two UPDATEs of accept_callbacks, run with executemany (one round trip per batch —
    on SQLite each statement is a hop to aiosqlite's thread, which under load costs ms). Their
    WHERE repeats the plan's conditions, so a wrong plan could only write nothing."""
    g = generations.c

    def status_is(*statuses: GenerationStatus) -> sa.ColumnElement[bool]:
        # Not IN (...): SQLAlchemy expands IN lists per execution, which executemany refuses.
        return sa.or_(*(g.status == status.value for status in sorted(statuses)))

    at = sa.bindparam("b_now", type_=g.callback_received_at.type)
    task = sa.bindparam("b_task", type_=g.task_id.type)
    common = dict(
        task_id=task, submitted_at=sa.func.coalesce(g.submitted_at, at),
        callback_received_at=at, updated_at=at,
    )
    matches = sa.and_(g.id == sa.bindparam("b_id", type_=g.id.type),
                      sa.or_(g.task_id.is_(None), g.task_id == task))
    to_storing = (
        sa.update(generations)
        .where(matches, status_is(GENERATING, SUBMIT_UNKNOWN))
        .values(
            status=STORING.value, kie_state=CALLBACK_RESULTS,
            result_urls=sa.bindparam("b_urls", type_=g.result_urls.type), completed_at=at,
            next_poll_at=None, lease_owner=None, lease_until=None, **common,
        )
    )
    moves = sa.bindparam("b_moves", type_=sa.Boolean())
    wake = (
        sa.update(generations)
        .where(matches, status_is(*_CALLBACK_OPEN))
        .values(
            status=sa.bindparam("b_status", type_=g.status.type),
            kie_state=sa.bindparam("b_state", type_=g.kie_state.type), next_poll_at=at,
            lease_owner=sa.case((moves, sa.null()), else_=g.lease_owner),
            lease_until=sa.case((moves, sa.null()), else_=g.lease_until),
            **common,
        )
    )
    return to_storing, wake


_TO_STORING, _WAKE = (DriverMany(statement) for statement in _callback_statements())
_CALLBACK_ROWS_SQLITE = (  # the rows a callback batch reads, at the driver (ids inlined as ?)
    f"SELECT {generations.c.id.name}, {generations.c.status.name}, {generations.c.task_id.name} "
    f"FROM {generations.name} WHERE {generations.c.id.name} IN ({{marks}}) "
    f"ORDER BY {generations.c.id.name}"
)


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
        daily_free: int = 0,
    ) -> StartResult:
        """Charge and insert a queued generation in one transaction. A repeated request_key
        returns the existing row without charging again. The prompt is its own column; options
        are the model's options (and the service's underscored keys), never the prompt.
        `daily_free` > 0: the user's free generations a UTC day on this model; while one is left
        today the generation costs nothing and takes it (returned if the generation fails)."""
        check_id("user_id", user_id)
        check_id("chat_id", chat_id)
        check_text("model_key", model_key, max_length=64)
        check_text("kind", kind, max_length=16)
        check_text("request_key", request_key, max_length=128)
        check_amount("cost", cost, allow_zero=True)
        check_amount("daily_free", daily_free, allow_zero=True)
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
            free_slot = (await self._take_daily_free(conn, user_id, daily_free, now)
                         if daily_free > 0 and cost > 0 else None)
            if free_slot is not None:
                cost = 0
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
            if free_slot is not None:
                await self._record_daily_free(conn, user_id, free_slot, generation.id, now)
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
        values["stage_attempts"] = 0  # a new stage starts with a clean count of failures
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

    async def accept_callback(
        self, generation_id: int, *, task_id: str, kie_state: str | None,
        result_urls: Iterable[str] | None = None, now: datetime | None = None,
    ) -> CallbackWrite:
        """Record KIE's callback for `task_id` in ONE conditional UPDATE (the callback is
        answered right after it; everything else happens in the pipeline's stages).

        With `result_urls` (an authenticated success callback carrying its results) a
        generating/submit_unknown row moves to `storing` with those URLs, kie_state
        CALLBACK_RESULTS (the storer confirms with recordInfo if a download fails) and no lease;
        otherwise the row is woken for the poller (next_poll_at = now). Either way a row that
        never learned its task id (lost create answer: queued/submit_unknown) records it, and a
        queued one moves to generating. Rows already storing or final, rows of another task and
        unknown ids are not written; the returned CallbackWrite says which it was."""
        note = CallbackNote(generation_id, task_id, kie_state,
                            None if result_urls is None else tuple(result_urls))
        [written] = await self.accept_callbacks([note], now=now)
        return written

    async def accept_callbacks(
        self, notes: Sequence[CallbackNote], *, now: datetime | None = None
    ) -> list[CallbackWrite]:
        """accept_callback for several callbacks in one transaction (group commit: callbacks
        arriving together share one BEGIN/COMMIT and one turn at SQLite's write lock). The
        rows are read under lock (FOR UPDATE on Postgres; SQLite's write lock), each callback's
        effect decided from them in order (a repeat in the same batch finds the first's
        result), then written with one executemany per kind of write. Results in order. A
        database error fails them all (none is answered 200)."""
        for note in notes:
            check_id("generation_id", note.generation_id)
            check_text("task_id", note.task_id, max_length=128)
        now = to_utc(now) or utcnow()
        g = generations.c
        ids = sorted({note.generation_id for note in notes})
        written: list[CallbackWrite] = []
        storing: list[dict[str, Any]] = []
        woken: list[dict[str, Any]] = []
        async with self._tx(urgent=True) as conn:  # KIE's 200 waits on it
            if conn.dialect.name == "sqlite":  # the write lock is held: no FOR UPDATE there
                rows = await conn.exec_driver_sql(
                    _CALLBACK_ROWS_SQLITE.format(marks=",".join("?" * len(ids))), tuple(ids))
            else:
                rows = await conn.execute(
                    sa.select(g.id, g.status, g.task_id).where(g.id.in_(ids))
                    .order_by(g.id).with_for_update()
                )
            state = {r.id: (GenerationStatus(r.status), r.task_id) for r in rows}
            for note in notes:
                if note.generation_id not in state:
                    written.append(CallbackWrite.unknown)
                    continue
                status, task_id = state[note.generation_id]
                outcome, new_status = _plan_callback(note, status, task_id)
                written.append(outcome)
                if outcome is CallbackWrite.storing:
                    storing.append(dict(b_id=note.generation_id, b_task=note.task_id,
                                        b_urls=list(note.result_urls or ())))
                elif outcome is CallbackWrite.woken:
                    woken.append(dict(b_id=note.generation_id, b_task=note.task_id,
                                      b_status=new_status.value, b_state=note.kie_state,
                                      b_moves=new_status != status))
                if outcome in (CallbackWrite.storing, CallbackWrite.woken):
                    state[note.generation_id] = (new_status, note.task_id)
            await _TO_STORING.execute(conn, {"b_now": now}, storing)
            await _WAKE.execute(conn, {"b_now": now}, woken)
        return written

    async def record_stage_failure(
        self, generation_id: int, *, owner: str, attempts: int, error: str,
        retry_at: datetime, now: datetime | None = None,
    ) -> bool:
        """Count one more failed attempt of the row's current stage: `attempts` (the claimed
        count + 1), the one-line `error`, and no new attempt before `retry_at`. A compare-and-set
        on the lease and the previous count, so a failure is counted once, and only by the
        process holding the row; False (no write) when it no longer does."""
        check_id("generation_id", generation_id)
        check_text("owner", owner, max_length=128)
        check_amount("attempts", attempts)
        g = generations.c
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(generations)
                .where(g.id == generation_id, g.lease_owner == owner,
                       g.stage_attempts == attempts - 1)
                .values(stage_attempts=attempts, stage_error=str(error)[:500],
                        next_poll_at=to_utc(retry_at), updated_at=now)
            )
            return result.rowcount == 1

    async def mark_alerted(self, generation_id: int, *, now: datetime | None = None) -> bool:
        """Record that the admins were told about this row; True only the first time, so of any
        number of passes and processes exactly one sends the alert."""
        check_id("generation_id", generation_id)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(generations)
                .where(generations.c.id == generation_id, generations.c.alerted_at.is_(None))
                .values(alerted_at=now)
            )
            return result.rowcount == 1

    async def fail_undelivered(self, generation_id: int, *, error: str,
                               now: datetime | None = None) -> bool:
        """A `succeeded` row that could never be delivered → failed, refunding the charge once
        (the stored files stay). False when it was delivered meanwhile or is not succeeded."""
        check_id("generation_id", generation_id)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            return await self._fail(
                conn, generation_id, {SUCCEEDED}, now=now, error=error,
                extra=generations.c.delivered_at.is_(None),
                completed_at=generations.c.completed_at,  # when KIE finished, unchanged
            )

    async def confirm_results(self, generation_id: int, *, result_urls: Iterable[str],
                              kie_state: str) -> bool:
        """Replace a `storing` row's KIE result URLs (recordInfo's, after the callback's could
        not be fetched). False when the row is not storing."""
        check_id("generation_id", generation_id)
        check_text("kie_state", kie_state, max_length=32)
        urls = [str(u) for u in result_urls]
        if not urls:
            raise InvalidFieldError("confirm_results needs at least one URL")
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(generations)
                .where(generations.c.id == generation_id, generations.c.status == STORING.value)
                .values(result_urls=urls, kie_state=kie_state, updated_at=utcnow())
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
        values.setdefault("stage_attempts", 0)
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
        if cost == 0:  # a daily free use comes back with the failure
            await conn.execute(sa.delete(daily_free_uses)
                               .where(daily_free_uses.c.generation_id == generation_id))
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
