"""SlidingWindowLimiter with a fake clock: no real sleeping."""

from __future__ import annotations

import asyncio

import pytest

from kie_client import NoLimit, RateLimiter, SlidingWindowLimiter
from tests.unit.kie.fixtures import FakeClock, Script, load, make_client, ok


async def test_allows_limit_then_waits_for_window():
    clock = FakeClock(start=100.0)
    limiter = SlidingWindowLimiter(20, 10.0, clock=clock, sleep=clock.sleep)
    for _ in range(20):
        await limiter.acquire()
    assert clock.sleeps == [] and clock.now == 100.0
    await limiter.acquire()
    assert clock.sleeps == [10.0] and clock.now == 110.0


async def test_sliding_not_fixed_window():
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(2, 1.0, clock=clock, sleep=clock.sleep)
    await limiter.acquire()           # t=0
    clock.now = 0.6
    await limiter.acquire()           # t=0.6
    await limiter.acquire()           # must wait until t=1.0 (first stamp leaves)
    assert clock.now == pytest.approx(1.0)
    await limiter.acquire()           # must wait until t=1.6
    assert clock.now == pytest.approx(1.6)
    assert len(clock.sleeps) == 2


async def test_never_more_than_limit_in_any_window():
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(55):
        await limiter.acquire()
        stamps.append(clock.now)
    for i, t in enumerate(stamps):
        in_window = [s for s in stamps if t <= s < t + 1.0]
        assert len(in_window) <= 10, (i, t)
    assert stamps[-1] == pytest.approx(5.0)


async def test_concurrent_waiters_served_in_order():
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(1, 1.0, clock=clock, sleep=clock.sleep)
    order = []

    async def worker(n):
        await limiter.acquire()
        order.append((n, clock.now))

    await asyncio.gather(*(worker(n) for n in range(4)))
    assert [n for n, _ in order] == [0, 1, 2, 3]
    assert [t for _, t in order] == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize(("limit", "period"), [(0, 1.0), (1, 0), (5, -1)])
def test_invalid_limits(limit, period):
    with pytest.raises(ValueError):
        SlidingWindowLimiter(limit, period)


def test_protocol():
    assert isinstance(SlidingWindowLimiter(1, 1.0), RateLimiter)
    assert isinstance(NoLimit(), RateLimiter)


class CountingLimiter:
    def __init__(self):
        self.calls = 0

    async def acquire(self):
        self.calls += 1


async def test_client_uses_create_limiter_per_attempt_and_status_limiter_for_polls():
    import httpx

    create, status = CountingLimiter(), CountingLimiter()
    script = Script(httpx.ConnectError("refused"), ok(load("create_task_live")),
                    ok(load("record_info_waiting_live")), ok(load("credit_live")))
    async with make_client(script, create_limiter=create, status_limiter=status) as client:
        await client.create_task("m", {"prompt": "x"})
        await client.get_task("t")
        await client.get_credits()
    assert create.calls == 2  # the retry also counts against KIE's window
    assert status.calls == 1


async def test_client_default_limiters_match_kie_limits():
    async with make_client(Script(ok({})), create_limiter=None, status_limiter=None) as client:
        assert (client.create_limiter.limit, client.create_limiter.period) == (20, 10.0)
        assert (client.status_limiter.limit, client.status_limiter.period) == (10, 1.0)


async def test_client_polls_wait_on_fake_clock():
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(10, 1.0, clock=clock, sleep=clock.sleep)
    script = Script(ok(load("record_info_waiting_live")))
    async with make_client(script, status_limiter=limiter) as client:
        for _ in range(25):
            await client.get_task("t")
    assert len(script.requests) == 25
    assert clock.now == pytest.approx(2.0)
