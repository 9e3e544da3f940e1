"""KIE's rate limits are per account, not per process: with REDIS_URL set, every bot process
takes its createTask / recordInfo slots from one sliding window kept in Redis.

Implements kie_client.ratelimit.RateLimiter (`async acquire()`). One Lua script does
trim → count → take-or-report-wait atomically, so two processes can never both take the last slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

_SCRIPT = """
local key = KEYS[1]
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
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if limit <= 0 or period <= 0:
            raise ValueError("limit and period must be positive")
        self._redis = redis
        self._key = key
        self._limit = limit
        self._period = period
        self._clock = clock
        self._sleep = sleep
        self._script = redis.register_script(_SCRIPT)

    def __repr__(self) -> str:
        return f"RedisWindowLimiter({self._limit}/{self._period}s)"

    async def acquire(self) -> None:
        while True:
            # Wall-clock time: every process must measure the window on the same scale.
            now = self._clock()
            member = f"{now:.6f}:{secrets.token_hex(4)}"
            raw = await self._script(keys=[self._key],
                                     args=[repr(now), repr(self._period), self._limit, member])
            wait = float(raw.decode() if isinstance(raw, bytes) else raw)
            if wait <= 0:
                return
            await self._sleep(max(wait, 0.01))
