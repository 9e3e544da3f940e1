"""How background work shares the event loop with the HTTP answers that wait on it.

One process answers KIE's callbacks and Telegram's webhook (each acknowledged once its small
write is durable) and, on the same loop, stores, delivers and handles updates. asyncio runs every
ready task of a loop turn before it reads its sockets again, so a turn in which 60 deliveries each
take their next step holds a callback that has just arrived for the whole turn — measured at
50–170 ms of stalls during a burst of finished generations (bench callbacks, role all), when KIE
expects its 200 within tens of milliseconds.

LoopShare bounds that:
- `turn()` — every transaction that is not an acknowledgement takes it (storage's Repository,
  given `turn`): background work runs at most `budget_s` of each loop turn, counted from the first
  deferral of the turn; past that, the rest continue in the next turn, after the loop has read
  its sockets. It replaces an unconditional one-turn yield before each transaction, which only
  moved a herd of tasks one turn later without spreading it.
- `acknowledging()` — the callback and webhook handlers hold it while they answer;
  `yield_to_acks()` — the pipeline takes it before each row: while acknowledgements are in
  flight new row work waits (never longer than `ack_wait_s`, so a flood of requests cannot
  starve deliveries), then takes a `turn()`.
- `acknowledging(hold=True)` — KIE's callbacks: while one is answered, `turn()` itself waits
  too (at most `ack_wait_s`), so rows already under way pause at their next transaction and the
  callback's two loop turns (its group commit, its answer) are short. Telegram's webhook does
  not hold: under a crowd an update is always being acknowledged, and handling updates must
  go on meanwhile.

No library schedules asyncio work by priority (the loop is FIFO by design); this is a counter,
a timestamp and one marker callback, with its reasons in docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

DEFAULT_BUDGET_S = 0.004
DEFAULT_ACK_WAIT_S = 0.25


class LoopShare:
    def __init__(self, *, budget_s: float = DEFAULT_BUDGET_S,
                 ack_wait_s: float = DEFAULT_ACK_WAIT_S) -> None:
        self._budget = budget_s
        self._ack_wait = ack_wait_s
        self._acks = 0
        self._holds = 0
        self._turn_started = float("-inf")
        self._marker_pending = False
        self._quiet: asyncio.Future[None] | None = None  # resolved when _acks drops to 0
        self._released: asyncio.Future[None] | None = None  # ... when _holds drops to 0

    @property
    def acknowledging_now(self) -> int:
        """HTTP answers in flight (what `yield_to_acks` waits for)."""
        return self._acks

    @contextlib.contextmanager
    def acknowledging(self, *, hold: bool = False) -> Iterator[None]:
        self._acks += 1
        self._holds += hold
        try:
            yield
        finally:
            self._acks -= 1
            self._holds -= hold
            if self._acks == 0:
                self._quiet = _resolve(self._quiet)
            if self._holds == 0:
                self._released = _resolve(self._released)

    async def turn(self) -> None:
        """Go on at once while this loop turn's background budget lasts; otherwise continue in
        a later turn (after the loop has read its sockets). While a holding acknowledgement is
        in flight, wait for it first (at most `ack_wait_s`)."""
        if self._holds:
            if self._released is None:
                self._released = asyncio.get_running_loop().create_future()
            await self._wait(self._released)
        while time.perf_counter() - self._turn_started >= self._budget:
            if not self._marker_pending:
                # Scheduled before our own resumption, so it runs first in the next turn and
                # starts that turn's budget; everyone deferred meanwhile resumes after it.
                self._marker_pending = True
                asyncio.get_running_loop().call_soon(self._mark)
            await asyncio.sleep(0)

    def _mark(self) -> None:
        self._marker_pending = False
        self._turn_started = time.perf_counter()

    async def yield_to_acks(self) -> None:
        """Let in-flight acknowledgements finish first (at most `ack_wait_s`), then `turn()`."""
        if self._acks:
            if self._quiet is None:
                self._quiet = asyncio.get_running_loop().create_future()
            await self._wait(self._quiet)
        await self.turn()

    async def _wait(self, event: asyncio.Future[None]) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._ack_wait):
                await asyncio.shield(event)


def _resolve(future: asyncio.Future[None] | None) -> None:
    """Wake everyone waiting on `future`; the next waiter makes a new one."""
    if future is not None and not future.done():
        future.set_result(None)
    return None
