"""Readiness (bot/health.py): each part's answer is kept for its TTL, failures too, and one probe
per part is in flight however many requests ask — a probe storm cannot hammer KIE."""

from __future__ import annotations

import asyncio

from bot.health import Check, Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Probe:
    """Counts its calls; fails with `error` when set; blocks until `gate` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self):
        self.calls += 1
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return None


async def test_a_storm_of_probes_costs_one_call_per_ttl():
    clock, kie = Clock(), Probe()
    readiness = Readiness([Check("kie", kie, ttl_s=15.0)], monotonic=clock)
    kie.gate.clear()  # the first call is slow: everyone arriving meanwhile shares it
    storm = [asyncio.ensure_future(readiness.run()) for _ in range(50)]
    await asyncio.sleep(0)
    kie.gate.set()
    results = await asyncio.gather(*storm)
    assert kie.calls == 1
    assert all(r == (True, {"kie": "ok"}, {}) for r in results)

    clock.now += 14.9
    await readiness.run()
    assert kie.calls == 1  # still fresh
    clock.now += 0.2
    await readiness.run()
    assert kie.calls == 2


async def test_a_failing_part_is_named_by_type_only_and_cached_too():
    clock, db, kie = Clock(), Probe(), Probe()
    kie.error = ConnectionRefusedError("connect to https://user:hunter2@kie.example failed")
    readiness = Readiness([Check("database", db, ttl_s=1.0), Check("kie", kie, ttl_s=15.0)],
                          monotonic=clock)
    ok, checks, _ = await readiness.run()
    assert not ok
    assert checks == {"database": "ok", "kie": "failing: ConnectionRefusedError"}
    assert "hunter2" not in repr(checks)
    for _ in range(10):
        await readiness.run()
    assert kie.calls == 1  # a down KIE is not asked again on every probe
    clock.now += 15.1
    kie.error = None
    assert await readiness.run() == (True, {"database": "ok", "kie": "ok"}, {})


async def test_a_hanging_part_times_out_and_is_named():
    clock, redis = Clock(), Probe()
    redis.gate.clear()  # never answers
    readiness = Readiness([Check("redis", redis, timeout_s=0.05)], monotonic=clock)
    ok, checks, _ = await readiness.run()
    assert (ok, checks) == (False, {"redis": "failing: timeout"})
