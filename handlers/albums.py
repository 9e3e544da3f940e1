"""Telegram albums: one reply once the group's messages stop coming.

Telegram sends an album (media group) as separate messages sharing `media_group_id`, each its
own update, a few milliseconds to a second apart, and says nothing about how many will come. The
handlers add each photo to the draft as it arrives (in FSM data, under the chat's update order);
`AlbumCollector.note` restarts the group's quiet timer, and only when no further message of the
group came for `quiet_s` does `done` run — once per group — to answer with everything collected.
The timer is the only in-memory part: the photos are in the draft, so a restart loses at most
the "received" reply, never a photo.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

QUIET_SECONDS = 1.0


class AlbumCollector:
    def __init__(self, quiet_s: float = QUIET_SECONDS, *,
                 sleep: Callable[[float], Awaitable[object]] | None = None) -> None:
        self.quiet_s = quiet_s
        # Tests pass a gate they open themselves ("the group stopped") instead of waiting.
        self._sleep = sleep or asyncio.sleep
        self._pending: dict[str, asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        return f"AlbumCollector(quiet_s={self.quiet_s}, pending={len(self._pending)})"

    @property
    def pending(self) -> int:
        return len(self._pending)

    def note(self, key: str, done: Callable[[], Awaitable[None]]) -> None:
        """Another message of group `key` arrived: `done` runs after `quiet_s` without more."""
        previous = self._pending.pop(key, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.get_running_loop().create_task(self._after_quiet(key, done),
                                                      name=f"album-{key}")
        self._pending[key] = task

    async def _after_quiet(self, key: str, done: Callable[[], Awaitable[None]]) -> None:
        # A debounce, not a wait for work: the only sign an album ended is that nothing came.
        await self._sleep(self.quiet_s)
        if self._pending.get(key) is asyncio.current_task():
            del self._pending[key]
        try:
            await done()
        except Exception:  # the user's next message still finds every photo in the draft
            log.exception("album reply failed")

    async def settle(self) -> None:
        """Wait until every group noted so far has had its reply (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending.values()), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._pending.values())
        self._pending.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
