"""Unit tier for the pipeline: time moved by hand (the tier's guards, tests/unit/conftest.py,
refuse sockets, name lookups and real sleeps)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from tests.unit.pipeline.fakes import FakeClock
from tests.unit.pipeline.harness import World, build_world

# Far from the real date on purpose: a timestamp or a claim that read the real clock instead of
# Pipeline.clock would put a row hours or years off schedule, and a test would see it.
START = datetime(2031, 3, 14, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def make_world(tmp_path, clock, caplog):
    """Build a world with PipelineConfig overrides (e.g. public_base_url=None for polling)."""
    worlds: list[World] = []

    async def make(**config: object) -> World:
        world = await build_world(tmp_path, clock, **config)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        await world.close()
        assert not world.kie.unexpected, f"unscripted KIE calls: {world.kie.unexpected}"
    # run_pass counts the rows it claimed even when handling one crashed (it logs and moves
    # on), so a crash must fail the test here rather than pass as "1 row handled".
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, f"the pipeline logged errors: {errors}"


@pytest.fixture
async def world(make_world) -> World:
    """Webhook mode (createTask carries the callback URL), the product's default timings."""
    return await make_world()
