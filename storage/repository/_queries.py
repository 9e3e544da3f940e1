"""Read-only views over generations and the ledger: library, queue, stats."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from storage.models import (
    FINAL_STATUSES,
    NON_FINAL_STATUSES,
    Generation,
    GenerationStatus,
    Stage,
)
from storage.repository._base import (
    check_amount,
    check_id,
    check_text,
    generation_from,
    status_in,
    to_utc,
    utcnow,
)
from storage.repository._lifecycle import LifecycleRepository
from storage.repository._money import IN_FLIGHT
from storage.schema import credit_ledger, generations, payments, users

LIBRARY_STATUSES = (GenerationStatus.succeeded,)
QUEUED = GenerationStatus.queued
PROGRESS_CHUNK = 100  # ids per progress_view query (and per turn of the loop)


class QueryRepository(LifecycleRepository):
    async def get_generation(self, generation_id: int) -> Generation | None:
        check_id("generation_id", generation_id)
        async with self._read() as conn:
            row = (await conn.execute(sa.select(generations).where(generations.c.id == generation_id))).first()
        return generation_from(row) if row else None

    async def get_generation_by_task(self, task_id: str) -> Generation | None:
        check_text("task_id", task_id, max_length=128)
        async with self._read() as conn:
            row = (await conn.execute(sa.select(generations).where(generations.c.task_id == task_id))).first()
        return generation_from(row) if row else None

    async def list_library(
        self, user_id: int, *, limit: int, offset: int = 0,
        statuses: Iterable[GenerationStatus | str] = LIBRARY_STATUSES,
    ) -> list[Generation]:
        """The user's generations, newest first; by default only finished results."""
        check_id("user_id", user_id)
        check_amount("limit", limit)
        check_amount("offset", offset, allow_zero=True)
        wanted = status_in(statuses)
        async with self._read() as conn:
            rows = await conn.execute(
                sa.select(generations)
                .where(generations.c.user_id == user_id, wanted)
                .order_by(generations.c.created_at.desc(), generations.c.id.desc())
                .limit(limit).offset(offset)
            )
            return [generation_from(r) for r in rows]

    async def count_library(
        self, user_id: int, *, statuses: Iterable[GenerationStatus | str] = LIBRARY_STATUSES
    ) -> int:
        check_id("user_id", user_id)
        return await self._count(generations.c.user_id == user_id, status_in(statuses))

    async def count_in_flight(self, user_id: int) -> int:
        check_id("user_id", user_id)
        return await self._count(generations.c.user_id == user_id, IN_FLIGHT)

    async def queue_position(self, generation_id: int) -> int:
        """1-based place among queued generations (submitted oldest first); 0 if not queued."""
        check_id("generation_id", generation_id)
        async with self._read() as conn:
            status = await conn.scalar(
                sa.select(generations.c.status).where(generations.c.id == generation_id)
            )
            if status != QUEUED:
                return 0
            return int(
                await conn.scalar(
                    sa.select(sa.func.count()).select_from(generations).where(
                        generations.c.status == QUEUED.value, generations.c.id <= generation_id
                    )
                )
            )

    async def queue_depths(self) -> dict[GenerationStatus, int]:
        """Rows per non-final status (zeros included)."""
        async with self._read() as conn:
            rows = await conn.execute(
                sa.select(generations.c.status, sa.func.count())
                .where(IN_FLIGHT).group_by(generations.c.status)
            )
            counts = {status: 0 for status in sorted(NON_FINAL_STATUSES)}
            counts.update({GenerationStatus(s): int(n) for s, n in rows})
            return counts

    async def metrics_view(self, *, now: datetime | None = None) -> dict:
        """Database-wide totals for /metrics (bot/metrics.py), read in one snapshot.

        Returns {"generations": {(model_key, status): n}, "refunded": {model_key: n} (failed
        generations whose charge was refunded), "stages": {Stage: n} (rows each stage would
        claim, ignoring "not before" and leases; expire: non-final rows past their deadline),
        "ledger": {reason: (entries, Σ delta)}, "payments": n, "stars": n,
        "payments_refunded": n, "balances": Σ users.balance}."""
        now = to_utc(now) or utcnow()
        g = generations.c
        final = status_in(FINAL_STATUSES)
        async with self._read(snapshot=True, scan=True) as conn:
            # One pass over generations; the groups are few (models × statuses × 2 × 2).
            undelivered = g.delivered_at.is_(None).label("undelivered")
            overdue = sa.and_(g.deadline_at.is_not(None), g.deadline_at <= now).label("overdue")
            groups = (await conn.execute(
                sa.select(g.model_key, g.status, undelivered, overdue, sa.func.count())
                .group_by(g.model_key, g.status, undelivered, overdue)
            )).all()
            # Finished rows of users who blocked the bot wait for no deliverer (few users).
            blocked = await conn.scalar(
                sa.select(sa.func.count()).select_from(
                    generations.join(users, users.c.id == g.user_id))
                .where(users.c.blocked.is_(True), final, g.delivered_at.is_(None))
            )
            refunded = await conn.execute(
                sa.select(g.model_key, sa.func.count())
                .select_from(generations.join(credit_ledger, sa.and_(
                    credit_ledger.c.generation_id == g.id, credit_ledger.c.reason == "refund")))
                .where(g.status == GenerationStatus.failed.value).group_by(g.model_key)
            )
            per_model: dict[tuple[str, GenerationStatus], int] = {}
            stages = dict.fromkeys(
                (Stage.submit, Stage.poll, Stage.store, Stage.deliver, Stage.expire), 0)
            stage_of = {GenerationStatus.queued: Stage.submit, GenerationStatus.generating:
                        Stage.poll, GenerationStatus.submit_unknown: Stage.poll,
                        GenerationStatus.storing: Stage.store}
            for model, status, is_undelivered, is_overdue, n in groups:
                status = GenerationStatus(status)
                n = int(n)
                per_model[(str(model), status)] = per_model.get((str(model), status), 0) + n
                if status in FINAL_STATUSES:
                    stages[Stage.deliver] += n if is_undelivered else 0
                    continue
                stages[stage_of[status]] += n
                stages[Stage.expire] += n if is_overdue else 0
            stages[Stage.deliver] -= int(blocked or 0)
            ledger = await conn.execute(
                sa.select(credit_ledger.c.reason, sa.func.count(), sa.func.sum(credit_ledger.c.delta))
                .group_by(credit_ledger.c.reason)
            )
            paid, stars, reversed_ = (await conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(payments.c.stars), 0),
                          sa.func.count(payments.c.refunded_at))
            )).one()
            balances = await conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(users.c.balance), 0)))
            return {
                "generations": per_model,
                "refunded": {str(m): int(n) for m, n in refunded},
                "stages": stages,
                "ledger": {str(r): (int(n), int(total or 0)) for r, n, total in ledger},
                "payments": int(paid), "stars": int(stars), "payments_refunded": int(reversed_),
                "balances": int(balances or 0),
            }

    async def stats(self, since: datetime | None = None) -> dict:
        """Counts per (model_key, status) and credit totals, since a moment or over all time.

        Returns {"generations": {(model_key, status): n}, "credits_sold": int,
        "credits_spent": int, "credits_refunded": int, "credits_purchase_refunded": int,
        "credits_bonus": int, "credits_admin": int, "stars": int, "payments": int}."""
        since = to_utc(since)
        gen_where = [] if since is None else [generations.c.created_at >= since]
        led_where = [] if since is None else [credit_ledger.c.created_at >= since]
        pay_where = [] if since is None else [payments.c.created_at >= since]
        async with self._read(snapshot=True, scan=True) as conn:
            per_model = await conn.execute(
                sa.select(generations.c.model_key, generations.c.status, sa.func.count())
                .where(*gen_where).group_by(generations.c.model_key, generations.c.status)
            )
            by_reason = dict(
                (str(reason), int(total or 0))
                for reason, total in await conn.execute(
                    sa.select(credit_ledger.c.reason, sa.func.sum(credit_ledger.c.delta))
                    .where(*led_where).group_by(credit_ledger.c.reason)
                )
            )
            stars, count = (
                await conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(payments.c.stars), 0), sa.func.count())
                    .select_from(payments).where(*pay_where)
                )
            ).one()
            return {
                "generations": {(str(m), GenerationStatus(s)): int(n) for m, s, n in per_model},
                "credits_sold": by_reason.get("purchase", 0),
                "credits_spent": -by_reason.get("spend", 0),
                "credits_refunded": by_reason.get("refund", 0),
                "credits_purchase_refunded": -by_reason.get("purchase_refund", 0),
                # Gifts: signup bonuses, referral bonuses and shares, promo codes.
                "credits_bonus": sum(by_reason.get(r, 0) for r in (
                    "signup_bonus", "referral_bonus", "referral_share", "promo")),
                "credits_admin": by_reason.get("admin_adjust", 0),
                "stars": int(stars),
                "payments": int(count),
            }

    async def progress_view(
        self, generation_ids: Iterable[int]
    ) -> list[tuple[Generation, str | None, int]]:
        """(generation, its user's language, queue_position) for each id that exists: the
        progress tracker reads every tracked row each tick. The position is as
        `queue_position` (0 when not queued). Reads only (no write lock), a query per
        PROGRESS_CHUNK ids, each taking its turn of the loop: hundreds of cards at once were one
        transaction holding the loop and the write lock for tens of milliseconds."""
        ids = sorted({check_id("generation_id", i) for i in generation_ids})
        if not ids:
            return []
        g = generations.c
        ranked = (
            sa.select(g.id.label("qid"), sa.func.row_number().over(order_by=g.id).label("pos"))
            .where(g.status == QUEUED.value)
            .subquery()
        )
        out: list[tuple[Generation, str | None, int]] = []
        for start in range(0, len(ids), PROGRESS_CHUNK):
            chunk = ids[start:start + PROGRESS_CHUNK]
            async with self._read() as conn:
                rows = await conn.execute(
                    sa.select(generations, users.c.language.label("_language"),
                              ranked.c.pos.label("_position"))
                    .select_from(
                        generations.outerjoin(users, users.c.id == g.user_id)
                        .outerjoin(ranked, ranked.c.qid == g.id)
                    )
                    .where(g.id.in_(chunk))
                    .order_by(g.id)
                )
                names = [c.name for c in generations.c]
                for row in rows:
                    mapping = row._mapping
                    own = _Columns({name: mapping[name] for name in names})
                    out.append((generation_from(own), mapping["_language"],
                                int(mapping["_position"] or 0)))
        return out

    async def _count(self, *where: sa.ColumnElement[bool]) -> int:
        async with self._read() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(generations).where(*where)))



class _Columns:
    """A row's generation columns alone (a joined row also carries the user's and the rank's)."""

    def __init__(self, mapping: dict) -> None:
        self._mapping = mapping
