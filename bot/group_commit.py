"""Group commit: writes that arrive together share one transaction.

Used where many small durable writes arrive at once and each caller must wait for its own to be
committed before it answers: Telegram updates into the inbox (bot/inbox.py) and KIE callbacks
(bot/services/pipeline/complete.py). One write per caller would queue 200 of them for 200 turns at
SQLite's write lock (or 200 pool checkouts on Postgres); here the first caller writes the batch
of everyone who arrived in its loop turn, and everyone arriving while it writes forms the next.
No library does this for asyncio + SQLAlchemy, and it is a few dozen lines.
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
    that goes away does not cancel the write of the others (its item is written anyway).

    The caller that finds nothing being written leads: it lets the loop finish the turn (those
    arriving in the same turn join it), writes the batch in its own task and returns its own
    result at once. It used to start a drain task and wait for it, which cost a lone callback
    or update two more loop turns (the task's start, then the result's way back through a
    shield); on a busy loop each turn is milliseconds. Callers arriving while a batch is written
    form the next one, written by a drain task once that batch ends."""

    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], *, name: str,
                 max_batch: int = 500) -> None:
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._leading = False

    @property
    def waiting(self) -> int:
        """Items queued for the next batch (not yet being written)."""
        return len(self._pending)

    def _idle(self) -> bool:
        return not self._leading and (self._drainer is None or self._drainer.done())

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._idle():
            # A batch is being written: this item goes in the next. (A plain future: a caller
            # cancelled here only cancels its wait; its item is still written.)
            return await future
        self._leading = True
        try:
            await asyncio.sleep(0)  # callers arriving in this same loop turn join the batch
            await self._write_next_batch()
        finally:
            self._leading = False
            if self._pending:
                self._drainer = asyncio.get_running_loop().create_task(
                    self._drain(), name=self._name)
        return await future  # done by now (the leader's item opens its batch)

    async def _drain(self) -> None:
        while self._pending:
            await self._write_next_batch()

    async def _write_next_batch(self) -> None:
        batch = self._pending[:self._max_batch]
        del self._pending[:self._max_batch]
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:  # every caller of the batch hears of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            # Cancelled mid-write (the writing caller went away, or shutdown): the transaction
            # did not finish, so the batch is written again by the next one (writes are
            # idempotent: a repeated callback or update changes nothing).
            self._pending[:0] = batch
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
