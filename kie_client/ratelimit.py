"""Client-side rate limits for KIE (20 createTask per 10 s per account, 10 recordInfo per s).

KIE rejects excess requests with 429 and does not queue them (kie-api.md §8), so the client
waits before sending instead. `RateLimiter` is a protocol so several processes can share one
limiter (Redis, the database) in place of the in-process `SlidingWindowLimiter`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

__all__ = ["RateLimiter", "SlidingWindowLimiter", "NoLimit"]


@runtime_checkable
class RateLimiter(Protocol):
    async def acquire(self) -> None:
        """Return when one more request may be sent now."""


class NoLimit:
    """A limiter that never waits (tests, or when a proxy enforces the limit)."""

    async def acquire(self) -> None:
        return None

    def __repr__(self) -> str:
        return "NoLimit()"


class SlidingWindowLimiter:
    """At most `limit` acquisitions in any `period` seconds, in this process.

    A sliding log rather than a token bucket: KIE counts requests per window, and a bucket
    refilling continuously would let a burst of `limit` plus refills through in one window.
    """

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("SlidingWindowLimiter.limit must be at least 1")
        if period <= 0:
            raise ValueError("SlidingWindowLimiter.period must be positive")
        self.limit = limit
        self.period = float(period)
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        # The lock keeps waiters in arrival order so none is starved by later callers.
        async with self._lock:
            while True:
                now = self._clock()
                while self._stamps and self._stamps[0] <= now - self.period:
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return
                await self._sleep(self._stamps[0] + self.period - now)

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter(limit={self.limit}, period={self.period})"
