"""Admins' runtime changes (model overrides, photo templates) kept fresh in every process.

Each process re-reads the rows at most every few seconds, before a handler prices or lists
anything, so a change made in another process arrives within that time without a message bus;
`force=True` after this process's own write. One reader at a time, and a database hiccup keeps
the last rows until the next turn (the bot goes on selling what it knew)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Rows = TypeVar("Rows")


class ThrottledReload(Generic[Rows]):
    def __init__(self, fetch: Callable[[], Awaitable[Rows]], apply: Callable[[Rows], None], *,
                 what: str, every: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._apply = apply
        self._what = what
        self._every = every
        self._monotonic = monotonic
        self._next = float("-inf")
        self._lock = asyncio.Lock()

    async def __call__(self, *, force: bool = False) -> None:
        if not force and self._monotonic() < self._next:
            return
        async with self._lock:
            if not force and self._monotonic() < self._next:
                return
            try:
                rows = await self._fetch()
            except Exception as exc:
                log.warning("%s not refreshed: %s", self._what, type(exc).__name__)
                self._next = self._monotonic() + self._every
                return
            self._apply(rows)
            self._next = self._monotonic() + self._every
