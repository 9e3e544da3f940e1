"""Group commit: writes that arrive together share one transaction.

Used where many small durable writes arrive at once and each caller must wait for its own to be
committed before it answers: Telegram updates into the inbox (bot/inbox.py) and KIE callbacks
(bot/services/pipeline/complete.py). One write per caller would queue 200 of them for 200 turns at
SQLite's write lock (or 200 pool checkouts on Postgres); here the first caller starts a drain
task and everyone arriving while it writes forms the next batch. No library does this for
asyncio + SQLAlchemy, and it is a dozen lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """`write(items) -> results` (one per item, in order) runs once per batch; `submit(item)`
    returns that item's result once its batch committed, or raises the batch's error. A caller
    that goes away does not cancel the write of the others (its item is written anyway)."""

    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], *, name: str,
                 max_batch: int = 500) -> None:
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Items queued for the next batch (not yet being written)."""
        return len(self._pending)

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain(), name=self._name)
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[:self._max_batch]
            del self._pending[:self._max_batch]
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as exc:  # every caller of the batch hears of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
