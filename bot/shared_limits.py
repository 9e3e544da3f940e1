"""KIE's rate limits are per account, not per process: with REDIS_URL set, every bot process
takes its createTask / recordInfo slots from one sliding window kept in Redis.

Implements kie_client.ratelimit's PausableLimiter and SettlingLimiter (`acquire`, `pause`, `settle`). One
Lua script does pause-check → trim → count → take-or-report-wait atomically, so two processes can
never both take the last slot. As in SlidingWindowLimiter, the window is `period + margin` (KIE
counts arrivals, we stamp departures; process clocks differ a little too), and a 429 seen by any
process pauses every process (a key with a TTL, kept in Redis's own clock).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kie_client.ratelimit import default_margin

_SCRIPT = """
local key = KEYS[1]
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  return tostring(paused / 1000)
end
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(period * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + period - now)
"""

# Moves a slot's stamp forward to the answer's time if it is still in the window (XX: a slot
# already trimmed is not re-added; GT: never backwards), and keeps the key alive past it.
_SETTLE = """
redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000) + 1000)
return 1
"""

# Extends the pause, never shortens it (two 429s: the longer wait wins).
_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 1
"""


def limiter_key(api_key: str, name: str) -> str:
    """Per KIE account (a hash of the key, never the key itself) and per limit."""
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]
    return f"kiebot:kie:{digest}:{name}"


class RedisWindowLimiter:
    def __init__(
        self,
        redis: Any,
        key: str,
        limit: int,
        period: float,
        *,
        margin: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if limit <= 0 or period <= 0:
            raise ValueError("limit and period must be positive")
        self._redis = redis
        self._key = key
        self._limit = limit
        margin = default_margin(period) if margin is None else float(margin)
        if margin < 0:
            raise ValueError("margin must not be negative")
        self.limit = limit
        self.period = float(period)
        self.margin = margin
        self._period = self.period + margin  # the window actually kept
        self._pause_key = f"{key}:pause"
        self._clock = clock
        self._sleep = sleep
        self._script = redis.register_script(_SCRIPT)
        self._pause_script = redis.register_script(_PAUSE)
        self._settle_script = redis.register_script(_SETTLE)

    def __repr__(self) -> str:
        return f"RedisWindowLimiter({self.limit}/{self.period}s, margin={self.margin}s)"

    async def pause(self, seconds: float) -> None:
        ms = int(seconds * 1000)
        if ms > 0:
            await self._pause_script(keys=[self._pause_key], args=[ms])

    async def settle(self, slot: object) -> None:
        """The answer is in: the slot counts from now (see kie_client/ratelimit.py)."""
        if isinstance(slot, str):
            await self._settle_script(keys=[self._key], args=[repr(self._clock()), slot,
                                                              repr(self._period)])

    async def acquire(self) -> str:
        while True:
            # Wall-clock time: every process must measure the window on the same scale.
            now = self._clock()
            member = f"{now:.6f}:{secrets.token_hex(4)}"
            raw = await self._script(keys=[self._key, self._pause_key],
                                     args=[repr(now), repr(self._period), self._limit, member])
            wait = float(raw.decode() if isinstance(raw, bytes) else raw)
            if wait <= 0:
                return member
            await self._sleep(max(wait, 0.01))
