"""ModelAdmin: admins' runtime changes to the catalog (/models), kept in the database.

Every process refreshes its Catalog's runtime overrides from the model_overrides table before
handling an update, at most once per REFRESH_SECONDS; the process where the admin made the change
applies it at once. A price is read when an order is charged (GenerationService.start stores it
on the generation), so a change applies to new orders and never to one already charged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kie_client.catalog import Catalog, RuntimeOverride, UnknownModelError
from bot.services.reload import ThrottledReload
from storage.repository import Repository

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class ModelLine:
    key: str
    name: str
    enabled: bool
    price: int
    price_source: str  # "admin" | "settings" | "data"


class ModelAdmin:
    def __init__(self, repository: Repository, catalog: Catalog, *, monotonic=time.monotonic,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.repository = repository
        self.catalog = catalog
        self._reload = ThrottledReload(lambda: self.repository.model_overrides(), self._apply,
                                       what="model overrides", every=refresh_seconds,
                                       monotonic=monotonic)

    async def refresh(self, *, force: bool = False) -> None:
        """Load the overrides when they may be stale. A database hiccup keeps the last ones
        (the bot keeps selling at the last known prices)."""
        await self._reload(force=force)

    def _apply(self, rows: list) -> None:
        self.catalog.apply_runtime(
            {r.model_key: RuntimeOverride(enabled=r.enabled, price=r.price) for r in rows})

    def lines(self) -> list[ModelLine]:
        return [ModelLine(s.key, s.name, self.catalog.enabled(s.key), self.catalog.base_price(s.key),
                          self.catalog.price_source(s.key)) for s in self.catalog.models()]

    async def set_enabled(self, key: str, enabled: bool, *, admin_id: int) -> None:
        self.catalog.get(key)  # UnknownModelError for a typo
        await self.repository.set_model_override(key, enabled=enabled, admin_id=admin_id)
        await self.refresh(force=True)

    async def set_price(self, key: str, price: int | None, *, admin_id: int) -> None:
        """`price` is the ⭐ at the model's default options; None returns to settings/data."""
        self.catalog.get(key)
        await self.repository.set_model_override(key, price=price, admin_id=admin_id)
        await self.refresh(force=True)


__all__ = ["REFRESH_SECONDS", "ModelAdmin", "ModelLine", "UnknownModelError"]
