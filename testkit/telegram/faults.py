"""Fault knobs a test turns on to see how the bot copes.

    fake.faults.flood_next(3, retry_after=2)      # next 3 counted send calls → 429
    fake.faults.flood_for(5.0, retry_after=1)     # every counted send call for 5 s → 429
    fake.faults.server_error_next(2, status=502)  # next 2 calls (any method but getUpdates) → 5xx
    fake.faults.delay(0.5, methods={"sendPhoto"}) # answer slowly
    fake.faults.hold({"sendPhoto"})               # answer only after fake.faults.release()
    fake.faults.drop_deliveries(2)                # first webhook delivery of the next 2 updates fails
    fake.faults.duplicate_next(1)                 # the next update is delivered twice
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Faults:
    clock: Callable[[], float] = time.monotonic
    flood_count: int = 0
    flood_until: float = 0.0
    flood_retry_after: int = 1
    error_count: int = 0
    error_status: int = 500
    delay_seconds: float = 0.0
    delay_methods: set[str] | None = None
    drop_count: int = 0
    duplicate_count: int = 0
    hold_methods: set[str] = field(default_factory=set)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _log: list[str] = field(default_factory=list)

    def flood_next(self, n: int, retry_after: int = 1) -> None:
        _count(n)
        self.flood_count, self.flood_retry_after = n, retry_after

    def flood_for(self, seconds: float, retry_after: int = 1) -> None:
        if seconds < 0 or retry_after < 1:
            raise ValueError("seconds must be ≥ 0 and retry_after ≥ 1")
        self.flood_until, self.flood_retry_after = self.clock() + seconds, retry_after

    def server_error_next(self, n: int, status: int = 500) -> None:
        _count(n)
        if not 500 <= status <= 599:
            raise ValueError(f"status must be 5xx, got {status}")
        self.error_count, self.error_status = n, status

    def delay(self, seconds: float, methods: set[str] | None = None) -> None:
        if seconds < 0:
            raise ValueError(f"delay must be ≥ 0, got {seconds}")
        self.delay_seconds = seconds
        self.delay_methods = {m.lower() for m in methods} if methods else None

    def hold(self, methods: set[str]) -> None:
        """Keep calls of these methods unanswered until release(): the way to kill a bot while
        its call is surely in flight (see fake.calls_in_progress), with no race against a timer."""
        if not methods:
            raise ValueError("hold needs at least one method name")
        self.hold_methods = {m.lower() for m in methods}
        self._released = asyncio.Event()

    def release(self) -> None:
        """Answer every held call now; later calls are not held."""
        self.hold_methods = set()
        self._released.set()

    def drop_deliveries(self, n: int) -> None:
        _count(n)
        self.drop_count = n

    def duplicate_next(self, n: int) -> None:
        _count(n)
        self.duplicate_count = n

    def clear(self) -> None:
        self.flood_count = self.error_count = self.drop_count = self.duplicate_count = 0
        self.flood_until = 0.0
        self.delay_seconds = 0.0
        self.release()

    # Consumed by the server.
    def take_flood(self) -> int | None:
        if self.flood_count > 0:
            self.flood_count -= 1
            return self.flood_retry_after
        if self.clock() < self.flood_until:
            return self.flood_retry_after
        return None

    def take_error(self) -> int | None:
        if self.error_count > 0:
            self.error_count -= 1
            return self.error_status
        return None

    def delay_for(self, method: str) -> float:
        if self.delay_seconds and (self.delay_methods is None or method.lower() in self.delay_methods):
            return self.delay_seconds
        return 0.0

    async def wait_if_held(self, method: str) -> None:
        if method.lower() in self.hold_methods:
            await self._released.wait()

    def take_drop(self) -> bool:
        if self.drop_count > 0:
            self.drop_count -= 1
            return True
        return False

    def take_duplicate(self) -> bool:
        if self.duplicate_count > 0:
            self.duplicate_count -= 1
            return True
        return False


def _count(n: int) -> None:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"count must be a non-negative integer, got {n!r}")
