"""The Redis-backed KIE limiter: two processes share one account-wide window (real Redis)."""

from __future__ import annotations

import secrets

import pytest

from bot.shared_limits import RedisWindowLimiter, limiter_key

pytestmark = pytest.mark.redis


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def redis(redis_url):
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_two_limiters_share_one_window(redis):
    clock = FakeClock()
    key = f"kiebot:test:{secrets.token_hex(6)}"
    a = RedisWindowLimiter(redis, key, 3, 10.0, clock=clock, sleep=clock.sleep)
    b = RedisWindowLimiter(redis, key, 3, 10.0, clock=clock, sleep=clock.sleep)
    try:
        start = clock.now
        for limiter in (a, b, a):
            await limiter.acquire()
        assert clock.now == start  # three slots, no wait
        await b.acquire()  # the fourth waits for the oldest slot to leave the window
        # ... plus the margin that absorbs arrival jitter at KIE
        assert clock.now - start == pytest.approx(10.25, abs=0.05)
    finally:
        await redis.delete(key)


async def test_a_settled_slot_counts_from_its_answer_in_every_process(redis):
    """Process a's request was answered 2 s after it left: settled, its slot leaves the shared
    window 2 s later than stamped, so b's next request waits for that too."""
    clock = FakeClock()
    key = f"kiebot:test:{secrets.token_hex(6)}"
    a = RedisWindowLimiter(redis, key, 1, 10.0, clock=clock, sleep=clock.sleep)
    b = RedisWindowLimiter(redis, key, 1, 10.0, clock=clock, sleep=clock.sleep)
    try:
        start = clock.now
        slot = await a.acquire()
        clock.now += 2.0
        await a.settle(slot)
        await a.settle("unknown member")  # a slot no longer in the window is not re-added
        assert await redis.zcard(key) == 1
        await b.acquire()
        assert clock.now - start == pytest.approx(2.0 + 10.25, abs=0.05)
    finally:
        await redis.delete(key)


async def test_a_429_in_one_process_pauses_the_other(redis):
    """The pause lives in Redis (a key with a TTL in Redis's clock): b waits although only a
    saw the 429. Waits on the condition (the key's TTL), not on a fixed sleep."""
    key = f"kiebot:test:{secrets.token_hex(6)}"
    a = RedisWindowLimiter(redis, key, 100, 1.0)
    b = RedisWindowLimiter(redis, key, 100, 1.0)
    try:
        await a.pause(0.3)
        assert await redis.pttl(f"{key}:pause") > 0
        await a.pause(0.05)  # shorter: must not shorten the pause
        assert await redis.pttl(f"{key}:pause") > 100
        await b.acquire()
        # b could only get its slot once the pause key was gone.
        assert await redis.pttl(f"{key}:pause") < 0
        assert await redis.zcard(key) == 1
    finally:
        await redis.delete(key, f"{key}:pause")


def test_key_names_the_account_without_its_secret():
    key = limiter_key("sk-very-secret-kie-key", "create")
    assert "sk-very-secret" not in key and key.endswith(":create")
    assert key != limiter_key("another-key", "create")


async def test_app_with_redis_generates_through_the_shared_limiter(tmp_path, redis_url):
    from tests.e2e.pipeline.helpers import make_user, media_messages, plain_stack, start, wait_final

    async with plain_stack(tmp_path, settings={"REDIS_URL": redis_url}) as stack:
        # The submitter wraps the create limiter to note when a slot was granted; the slots
        # themselves still come from Redis.
        create_limiter = getattr(stack.app.kie.create_limiter, "inner", stack.app.kie.create_limiter)
        assert type(create_limiter).__name__ == "RedisWindowLimiter"
        tg = await make_user(stack)
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and len(media_messages(tg)) == 1
