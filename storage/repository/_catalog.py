"""Admins' runtime catalog overrides (the model_overrides table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from storage.repository._base import RepositoryBase, check_amount, check_id, check_text, to_utc, utcnow
from storage.schema import model_overrides


@dataclass(frozen=True)
class ModelOverrideRow:
    model_key: str
    enabled: bool | None
    price: int | None
    updated_by: int | None
    updated_at: datetime


_UNSET = object()


class CatalogRepository(RepositoryBase):
    async def model_overrides(self) -> list[ModelOverrideRow]:
        async with self._read() as conn:
            rows = await conn.execute(sa.select(model_overrides).order_by(model_overrides.c.model_key))
            return [ModelOverrideRow(r.model_key, r.enabled, r.price, r.updated_by, to_utc(r.updated_at))
                    for r in rows]

    async def set_model_override(self, model_key: str, *, enabled: bool | None | object = _UNSET,
                                 price: int | None | object = _UNSET, admin_id: int | None = None,
                                 now: datetime | None = None) -> None:
        """Change one model's enabled and/or price (None clears it); other fields stay."""
        check_text("model_key", model_key, max_length=64)
        if admin_id is not None:
            check_id("admin_id", admin_id)
        changes: dict = {"updated_by": admin_id, "updated_at": to_utc(now) or utcnow()}
        if enabled is not _UNSET:
            changes["enabled"] = None if enabled is None else bool(enabled)
        if price is not _UNSET:
            changes["price"] = None if price is None else check_amount("price", price, allow_zero=True)
        async with self._tx() as conn:
            updated = await conn.execute(
                sa.update(model_overrides).where(model_overrides.c.model_key == model_key).values(**changes))
            if updated.rowcount == 0:
                await conn.execute(sa.insert(model_overrides).values(model_key=model_key, **changes))
