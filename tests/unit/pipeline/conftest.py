"""Unit tier for the pipeline: no sockets, no sleeping, time moved by hand.

Both guards record what they refused as well as raising, because the pipeline catches a stage's
exceptions (a pass logs and moves on): the teardown check fails the test even then.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import UTC, datetime

import pytest

from tests.unit.pipeline.fakes import FakeClock
from tests.unit.pipeline.harness import World, build_world

# Far from the real date on purpose: a timestamp or a claim that read the real clock instead of
# Pipeline.clock would put a row hours or years off schedule, and a test would see it.
START = datetime(2031, 3, 14, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    refused: list[str] = []

    def connect(self: socket.socket, address: object, *args: object) -> None:
        refused.append(f"connect {address!r}")
        raise ConnectionRefusedError(f"unit tests open no sockets (connect to {address!r})")

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
        refused.append(f"resolve {host!r}")
        raise OSError(f"unit tests resolve no names ({host!r})")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield refused
    assert not refused, f"the network was used: {refused}"


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """asyncio.sleep(0) (a yield) is allowed; any real wait is refused."""
    refused: list[float] = []
    yield_now = asyncio.sleep

    async def sleep(delay: float, result: object = None) -> object:
        if delay > 0:
            refused.append(delay)
            raise AssertionError(f"unit tests never sleep (asked for {delay}s); inject a clock")
        return await yield_now(0, result)

    def blocking_sleep(delay: float) -> None:
        refused.append(delay)
        raise AssertionError(f"unit tests never sleep (time.sleep({delay}))")

    monkeypatch.setattr(asyncio, "sleep", sleep)
    monkeypatch.setattr(time, "sleep", blocking_sleep)
    yield refused
    assert not refused, f"real sleeps were asked for: {refused}"


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
