"""Client-side rate limits for KIE (20 createTask per 10 s per account, 10 recordInfo per s).

KIE rejects excess requests with 429 and does not queue them (kie-api.md §8), so the client
waits before sending instead. `RateLimiter` is a protocol so several processes can share one
limiter (Redis, the database) in place of the in-process `SlidingWindowLimiter`.

Two things make a limiter that allows "exactly KIE's limit" still earn 429s, and both are
handled here:
- KIE counts a request when it *arrives*; we stamp the slot when the request *leaves*. Network
  and event-loop jitter between the two can put `limit + 1` arrivals into one of KIE's windows:
  in a burst of 200 Generate taps the first createTasks left on time but reached KIE up to half
  a second later, behind the loop's other work. So the window we keep is `period + margin`,
  and once the answer is in, the client `settle`s the slot: its stamp moves to the moment the
  answer arrived. KIE counted the request before it answered, so a window measured from the
  answer always covers KIE's, however late the request reached it.
- A 429 means KIE's window is fuller than ours (another client on the account, a restart that
  forgot its stamps). Every caller retrying on its own would spend more slots on more 429s;
  instead the client calls `pause(seconds)` and *every* caller of the limiter waits.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

__all__ = ["RateLimiter", "PausableLimiter", "SettlingLimiter", "SlidingWindowLimiter", "NoLimit",
           "default_margin", "settle"]


@runtime_checkable
class RateLimiter(Protocol):
    async def acquire(self) -> object:
        """Return when one more request may be sent now; the value names the slot taken (for
        `settle`), or None."""


@runtime_checkable
class SettlingLimiter(RateLimiter, Protocol):
    async def settle(self, slot: object) -> None:
        """The request sent on `slot` has been answered (or failed): count it from now."""


async def settle(limiter: object, slot: object) -> None:
    """Settle `slot` on limiters that support it; a no-op for the rest."""
    if slot is not None and isinstance(limiter, SettlingLimiter):
        await limiter.settle(slot)


@runtime_checkable
class PausableLimiter(RateLimiter, Protocol):
    async def pause(self, seconds: float) -> None:
        """No slot is handed out for `seconds` (the server said 429), to any caller."""


def default_margin(period: float) -> float:
    """Slack added to a window of `period` seconds: enough for loopback and internet jitter
    between our stamp and KIE's arrival count (0.25 s for 10 s, 0.1 s for 1 s) while keeping
    ≥ 97 % of the allowed rate."""
    return min(0.25, 0.1 * period)


class NoLimit:
    """A limiter that never waits (tests, or when a proxy enforces the limit)."""

    async def acquire(self) -> None:
        return None


class _Slot:
    """One request's place in the window: when it counts from (moved forward by `settle`)."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    def __repr__(self) -> str:
        return "NoLimit()"


class SlidingWindowLimiter:
    """At most `limit` acquisitions in any `period + margin` seconds, in this process.

    A sliding log rather than a token bucket: KIE counts requests per window, and a bucket
    refilling continuously would let a burst of `limit` plus refills through in one window.
    """

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        margin: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("SlidingWindowLimiter.limit must be at least 1")
        if period <= 0:
            raise ValueError("SlidingWindowLimiter.period must be positive")
        margin = default_margin(period) if margin is None else float(margin)
        if margin < 0:
            raise ValueError("SlidingWindowLimiter.margin must not be negative")
        self.limit = limit
        self.period = float(period)
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._slots: list[_Slot] = []  # at most `limit`: a scan is cheaper than keeping order
        self._paused_until = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def window(self) -> float:
        return self.period + self.margin

    async def acquire(self) -> _Slot:
        # The lock keeps waiters in arrival order so none is starved by later callers.
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                # (the epsilon: a float wait of a few ulps would not move the clock at all)
                self._slots = [s for s in self._slots if s.at + self.window > now + 1e-9]
                if len(self._slots) < self.limit:
                    slot = _Slot(now)
                    self._slots.append(slot)
                    return slot
                await self._sleep(min(s.at for s in self._slots) + self.window - now)

    async def settle(self, slot: object) -> None:
        if isinstance(slot, _Slot):
            slot.at = max(slot.at, self._clock())

    async def pause(self, seconds: float) -> None:
        if seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def __repr__(self) -> str:
        return (f"SlidingWindowLimiter(limit={self.limit}, period={self.period}, "
                f"margin={self.margin})")
