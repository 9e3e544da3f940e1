"""SlidingWindowLimiter with a fake clock: no real sleeping."""

from __future__ import annotations

import asyncio

import pytest

from kie_client import NoLimit, RateLimiter, SlidingWindowLimiter
from tests.unit.kie.fixtures import FakeClock, Script, load, make_client, ok


async def test_allows_limit_then_waits_for_window():
    clock = FakeClock(start=100.0)
    limiter = SlidingWindowLimiter(20, 10.0, margin=0.0, clock=clock, sleep=clock.sleep)
    for _ in range(20):
        await limiter.acquire()
    assert clock.sleeps == [] and clock.now == 100.0
    await limiter.acquire()
    assert clock.sleeps == [10.0] and clock.now == 110.0


async def test_sliding_not_fixed_window():
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(2, 1.0, margin=0.0, clock=clock, sleep=clock.sleep)
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
    limiter = SlidingWindowLimiter(10, 1.0, margin=0.0, clock=clock, sleep=clock.sleep)
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
    limiter = SlidingWindowLimiter(1, 1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    order = []

    async def worker(n):
        await limiter.acquire()
        order.append((n, clock.now))

    await asyncio.gather(*(worker(n) for n in range(4)))
    assert [n for n, _ in order] == [0, 1, 2, 3]
    assert [t for _, t in order] == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize(("limit", "period", "margin"),
                         [(0, 1.0, None), (1, 0, None), (5, -1, None), (5, 1.0, -0.1)])
def test_invalid_limits(limit, period, margin):
    with pytest.raises(ValueError):
        SlidingWindowLimiter(limit, period, margin=margin)


def test_protocol():
    assert isinstance(SlidingWindowLimiter(1, 1.0), RateLimiter)
    assert isinstance(NoLimit(), RateLimiter)


async def test_settled_slots_count_from_the_answer_so_late_arrivals_keep_the_window():
    """A burst leaves on time but reaches KIE late (0.4 s, more than the margin) and is answered
    at 0.45 s. Settled at the answer, the window counts from there: the next request leaves
    only after every late arrival has left KIE's window."""
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(10, 1.0, margin=0.1, clock=clock, sleep=clock.sleep)
    burst = [await limiter.acquire() for _ in range(10)]
    clock.now = 0.45
    for slot in burst:
        await limiter.settle(slot)
    await limiter.acquire()
    assert clock.now >= 0.4 + 1.0  # KIE's window from the latest arrival is over
    assert clock.now == pytest.approx(0.45 + 1.1)


async def test_without_settling_a_late_burst_breaks_the_window():
    """The failure settling exists for (so the test above can fail): unsettled, the eleventh
    request leaves at 1.1 s while the burst, arrived at 0.4 s, is still in KIE's window."""
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(10, 1.0, margin=0.1, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        await limiter.acquire()
    clock.now = 0.45
    await limiter.acquire()
    assert clock.now < 0.4 + 1.0


async def test_settle_never_moves_a_slot_back_and_ignores_foreign_slots():
    clock = FakeClock(start=5.0)
    limiter = SlidingWindowLimiter(1, 1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    slot = await limiter.acquire()
    await limiter.settle("not a slot")
    await limiter.settle(slot)
    assert slot.at == 5.0
    await limiter.acquire()
    assert clock.now == pytest.approx(6.0)


class CountingLimiter:
    def __init__(self):
        self.calls = 0

    async def acquire(self):
        self.calls += 1


class SettleRecorder(SlidingWindowLimiter):
    def __init__(self, clock):
        super().__init__(20, 10.0, margin=0.0, clock=clock, sleep=clock.sleep)
        self.settled: list[float] = []

    async def settle(self, slot):
        self.settled.append(self._clock())
        await super().settle(slot)


async def test_client_settles_every_attempt_after_its_answer_or_failure():
    import httpx

    clock = FakeClock(start=0.0)
    limiter = SettleRecorder(clock)
    script = Script(httpx.ConnectError("refused"), ok(load("create_task_live")))
    async with make_client(script, create_limiter=limiter) as client:
        await client.create_task("m", {"prompt": "x"})
    assert len(limiter.settled) == 2  # the failed attempt and the answered one


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
        # Slack for arrival jitter: KIE counts arrivals, the limiter stamps departures.
        assert client.create_limiter.margin == pytest.approx(0.25)
        assert client.status_limiter.margin == pytest.approx(0.1)


async def test_client_polls_wait_on_fake_clock():
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(10, 1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    script = Script(ok(load("record_info_waiting_live")))
    async with make_client(script, status_limiter=limiter) as client:
        for _ in range(25):
            await client.get_task("t")
    assert len(script.requests) == 25
    assert clock.now == pytest.approx(2.0)


def max_in_window(stamps: list[float], period: float) -> int:
    return max(sum(1 for s in stamps if t <= s < t + period) for t in stamps)


async def test_margin_absorbs_arrival_jitter():
    """Stamps leave at the limiter's times but arrive up to `margin` later or earlier; KIE's
    window (counted on arrival) still never sees more than the limit."""
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(10, 1.0, margin=0.1, clock=clock, sleep=clock.sleep)
    departures = []
    for _ in range(100):
        await limiter.acquire()
        departures.append(clock.now)
    # Worst case: every other window's requests arrive (almost) a whole margin late, the
    # next window's on time.
    arrivals = [t + (0.0999 if (i // 10) % 2 == 0 else 0.0) for i, t in enumerate(departures)]
    assert max_in_window(arrivals, 1.0) <= 10
    # ... and the margin costs little: ≥ 90 % of the allowed rate over a long run.
    assert 100 / departures[-1] >= 0.9 * 10


async def test_without_margin_jitter_breaks_the_window():
    """The failure the margin exists for (so the test above can fail)."""
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(10, 1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    departures = []
    for _ in range(30):
        await limiter.acquire()
        departures.append(clock.now)
    arrivals = [t + (0.05 if (i // 10) % 2 == 0 else 0.0) for i, t in enumerate(departures)]
    assert max_in_window(arrivals, 1.0) > 10


async def test_pause_holds_every_waiter():
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(10, 1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    await limiter.pause(5.0)
    await limiter.pause(1.0)  # a shorter pause never shortens a longer one
    granted = []

    async def caller(n):
        await limiter.acquire()
        granted.append(clock.now)

    await asyncio.gather(*(caller(n) for n in range(3)))
    assert granted == [5.0, 5.0, 5.0]


async def test_client_429_pauses_the_shared_limiter_and_the_retry_takes_a_slot():
    """A 429 pauses everyone for Retry-After; the retry then queues for a slot (and counts)."""
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(20, 10.0, margin=0.25, clock=clock, sleep=clock.sleep)
    script = Script(ok({"code": 429, "msg": "Rate limit exceeded"}, 429, {"Retry-After": "3"}),
                    ok(load("create_task_live")))
    async with make_client(script, create_limiter=limiter) as client:
        await client.create_task("m", {"prompt": "x"})
        # The client did not sleep on its own: the wait was the limiter's pause, on its clock.
        assert client._sleep.delays == []
    assert len(script.requests) == 2
    assert clock.now == pytest.approx(3.0)
    assert len(limiter._slots) == 2  # the retry spent a slot of the window
    # Another caller arriving during the pause would have waited too.
    await limiter.pause(2.0)
    before = clock.now
    await limiter.acquire()
    assert clock.now == pytest.approx(before + 2.0)


async def test_client_429_without_a_pausable_limiter_backs_off_itself():
    create = CountingLimiter()
    script = Script(ok({"code": 429, "msg": "Rate limit exceeded"}, 429, {"Retry-After": "2"}),
                    ok(load("create_task_live")))
    async with make_client(script, create_limiter=create) as client:
        await client.create_task("m", {"prompt": "x"})
        assert client._sleep.delays == [2.0]
    assert create.calls == 2 and len(script.requests) == 2
