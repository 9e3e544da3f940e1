"""Variant orders: one Generate that makes N pictures (issue 14 item 4) is N generation rows —
each its own KIE task, its own spend row and, if KIE fails it, its own refund (unique per
generation, so a failed share is refunded once) — charged and inserted together in ONE
transaction, so an order is all there or not at all.

The first row (the "lead") carries the card's request key; row i carries `<key>#v<i>`, which is
also how the deliverer finds an order's rows to send them as one album."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.errors import InFlightLimitError, InvalidFieldError
from storage.models import Generation, StartResult
from storage.repository._base import (
    check_amount,
    check_id,
    check_text,
    generation_from,
    to_utc,
    utcnow,
)
from storage.repository._lifecycle import LifecycleRepository
from storage.repository._money import IN_FLIGHT
from storage.schema import credit_ledger, generations

MAX_VARIANTS = 4
VARIANT_MARK = "#v"


def variant_key(request_key: str, index: int) -> str:
    """Row `index` (1-based) of the order whose card made `request_key`."""
    return request_key if index == 1 else f"{request_key}{VARIANT_MARK}{index}"


# An order's later rows are not counted against the in-flight limit when an order starts: an
# order counts as one request (the other starts still count every row: the safe side).
_NOT_A_LATER_VARIANT = sa.not_(generations.c.request_key.like(f"%{VARIANT_MARK}%"))


class VariantRepository(LifecycleRepository):
    async def start_variants(
        self, *, user_id: int, chat_id: int, model_key: str, kind: str, cost: int, count: int,
        options: dict[str, Any], request_key: str, prompt: str = "",
        max_in_flight: int | None = None, deadline_at: datetime | None = None,
        now: datetime | None = None,
    ) -> tuple[StartResult, list[Generation]]:
        """Charge `count` × `cost` and insert `count` queued rows in one transaction. A repeated
        request key returns the existing rows and charges nothing. `options` get the row's
        `_variant` (1-based) and `_variants` (count)."""
        check_id("user_id", user_id)
        check_id("chat_id", chat_id)
        check_text("model_key", model_key, max_length=64)
        check_text("request_key", request_key, max_length=120)
        check_amount("cost", cost, allow_zero=True)
        if not isinstance(count, int) or not 2 <= count <= MAX_VARIANTS:
            raise InvalidFieldError(f"count must be 2…{MAX_VARIANTS}")
        if VARIANT_MARK in request_key:
            raise InvalidFieldError("a request key of an order may not contain #v")
        if not isinstance(options, dict) or "prompt" in options:
            raise InvalidFieldError("options must be a dict without the prompt")
        now = to_utc(now) or utcnow()
        keys = [variant_key(request_key, i) for i in range(1, count + 1)]
        async with self._tx() as conn:
            await self._lock_user(conn, user_id)  # serialises this user's starts
            existing = await self._variant_rows(conn, user_id, keys)
            if existing:
                return StartResult(existing[0], created=False), existing
            if max_in_flight is not None:
                in_flight = await conn.scalar(
                    sa.select(sa.func.count()).select_from(generations)
                    .where(generations.c.user_id == user_id, IN_FLIGHT, _NOT_A_LATER_VARIANT))
                if in_flight >= max_in_flight:
                    raise InFlightLimitError(max_in_flight)
            if cost > 0:
                await self._debit(conn, user_id, cost * count)
            rows = []
            for index, key in enumerate(keys, start=1):
                row = (await conn.execute(
                    sa.insert(generations).values(
                        user_id=user_id, chat_id=chat_id, status="queued", kind=kind,
                        model_key=model_key, prompt=prompt, result_urls=[], stored_paths=[],
                        options={**options, "_variant": index, "_variants": count},
                        cost=cost, request_key=key, poll_attempts=0, deadline_at=deadline_at,
                        created_at=now, updated_at=now,
                    ).returning(*generations.c))).one()
                g = generation_from(row)
                if cost > 0:  # one spend row per generation (unique), as start_generation does
                    await conn.execute(sa.insert(credit_ledger).values(
                        user_id=user_id, delta=-cost, reason="spend", generation_id=g.id,
                        created_at=now))
                rows.append(g)
            return StartResult(rows[0], created=True), rows

    async def variant_rows(self, user_id: int, request_key: str, count: int) -> list[Generation]:
        """The rows of the order whose lead has `request_key`, in order (missing ones skipped)."""
        check_id("user_id", user_id)
        keys = [variant_key(request_key, i) for i in range(1, min(count, MAX_VARIANTS) + 1)]
        async with self._read() as conn:
            return await self._variant_rows(conn, user_id, keys)

    async def _variant_rows(self, conn, user_id: int, keys: list[str]) -> list[Generation]:
        rows = (await conn.execute(
            sa.select(generations).where(generations.c.user_id == user_id,
                                         generations.c.request_key.in_(keys)))).all()
        by_key = {row.request_key: generation_from(row) for row in rows}
        return [by_key[k] for k in keys if k in by_key]
