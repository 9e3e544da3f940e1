"""Admins' /models changes over the real Repository (SQLite file and Postgres): two processes,
each with its own Catalog, one admin; the other follows within REFRESH_SECONDS."""

from __future__ import annotations

import pytest

from bot.services.models import ModelAdmin
from kie_client.catalog import Catalog, UnknownModelError
from migrations.runner import ensure_schema
from storage.db import create_engine
from storage.errors import InvalidAmountError
from storage.repository import Repository


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/m.sqlite3"
    return request.getfixturevalue("pg_database")


@pytest.fixture
async def repository(database_url):
    engine = create_engine(database_url)
    await ensure_schema(engine)
    yield Repository(engine)
    await engine.dispose()


async def test_a_change_in_one_process_reaches_the_other(repository):
    clock = Clock()
    admin_side = ModelAdmin(repository, Catalog(), monotonic=clock)
    other = ModelAdmin(repository, Catalog(), monotonic=clock, refresh_seconds=5)
    await other.refresh()
    await admin_side.set_price("kling_30_t2v", 50, admin_id=7)
    await admin_side.set_enabled("flux2_pro_t2i", False, admin_id=7)
    assert admin_side.catalog.price("kling_30_t2v", {}) == 50  # at once where it was made
    assert not admin_side.catalog.enabled("flux2_pro_t2i")

    await other.refresh()  # still within its 5 s: nothing read
    assert other.catalog.price("kling_30_t2v", {}) == 35 and other.catalog.enabled("flux2_pro_t2i")
    clock.now += 5
    await other.refresh()
    assert other.catalog.price("kling_30_t2v", {"duration": "10"}) == 100
    assert not other.catalog.enabled("flux2_pro_t2i")

    # Changing one field keeps the other; None returns to the data's price.
    await admin_side.set_enabled("kling_30_t2v", False, admin_id=8)
    await admin_side.set_price("kling_30_t2v", None, admin_id=8)
    rows = {r.model_key: r for r in await repository.model_overrides()}
    assert (rows["kling_30_t2v"].enabled, rows["kling_30_t2v"].price, rows["kling_30_t2v"].updated_by) == (
        False, None, 8)
    assert (rows["flux2_pro_t2i"].enabled, rows["flux2_pro_t2i"].price) == (False, None)
    clock.now += 5
    await other.refresh()
    assert other.catalog.price("kling_30_t2v", {}) == 35 and not other.catalog.enabled("kling_30_t2v")
    lines = {line.key: line for line in other.lines()}
    assert (lines["kling_30_t2v"].enabled, lines["kling_30_t2v"].price_source) == (False, "data")


async def test_bad_changes_are_refused_before_the_database(repository):
    admin = ModelAdmin(repository, Catalog())
    with pytest.raises(UnknownModelError):
        await admin.set_price("midjourney", 5, admin_id=1)
    with pytest.raises(InvalidAmountError):
        await repository.set_model_override("kling_30_t2v", price=-3, admin_id=1)
    assert await repository.model_overrides() == []
