"""ChatSender: the single way the pipeline talks to chats, within Telegram's flood limits.

One instance per process (built in the composition root). What Telegram limits is *messages*
(send*, copy*, forward*): about 1 per second per chat and 30 per second overall. So:
- messages are paced ≤ 1 per `per_chat_interval` per chat (a lock per chat keeps them in order);
  edits and chat actions are not (a delivery edits its status card and sends the media in the
  same chat at once, instead of waiting a second in every chat);
- messages take a slot of a global budget (`global_per_second` in any `1 s + global_margin`);
  a slot counts from when its answer arrives, never from when the request left, so however
  late a request reaches Telegram it is inside our window for as long as it is inside
  Telegram's (the same settling as kie_client/ratelimit.py; see _Budget); edits and chat actions
  take slots of a second budget of the same size, so they never slow messages down, and there
  cosmetic calls (progress-card edits, chat actions: `cosmetic=True`) only get slots no
  urgent call (a delivery's final card edit) is waiting for;
- 429 retry_after is waited out instead of dropping a message, and "bot was blocked" becomes
  ChatBlockedError so callers mark the user and stop trying.
Per-chat bookkeeping lives only while a chat is busy or inside its pacing interval (bounded
memory with any number of chats).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendChatAction, TelegramMethod

from bot.logging import kv

log = logging.getLogger(__name__)

# Sweep idle per-chat entries once this many accumulate.
_PRUNE_AT = 1024
# A settled global slot counts from its answer, but from no later than this after it was taken.
_SETTLE_CAP_S = 0.25


class ChatBlockedError(Exception):
    """The user blocked the bot (403); sending again would only fail again."""

    def __init__(self, chat_id: int) -> None:
        super().__init__(f"chat {chat_id} blocked the bot")
        self.chat_id = chat_id


class SendFailedError(Exception):
    """Telegram kept refusing or was unreachable; the caller keeps the work for a later pass."""


class FloodWaitError(SendFailedError):
    """Telegram asked to wait longer than this sender may (or kept asking): nothing was posted,
    so the same message may be tried again later."""


def is_not_modified(exc: TelegramBadRequest) -> bool:
    return "message is not modified" in str(exc).lower()


class _Chat:
    __slots__ = ("lock", "next_at", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.next_at = 0.0  # earliest time the next message may go (pacing, flood wait)
        self.users = 0


class _Budget:
    """At most `limit` slots in any `window` seconds; cosmetic callers only get slots no urgent
    caller is waiting for.

    A slot is *in flight* from `take()` until `settle()` (the answer is in), and from then on
    counts from the answer's time. Telegram counts a request when it arrives, which is between
    the two, so for any window of Telegram's the last request started in it saw every other one
    either in flight or settled inside its own window: jitter on the way (a busy loop, a slow
    connection) cannot put more than `limit` into one of Telegram's seconds. A settled slot
    counts from at most _SETTLE_CAP_S after it was taken: a long upload is not made to hold its
    slot for its whole transfer plus a second (its arrival is its start, as far as we know)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[Any]]) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._cosmetic_lock = asyncio.Lock()
        self._urgent_waiting = 0
        self._urgent_idle = asyncio.Event()
        self._urgent_idle.set()
        # When each settled slot counts from (a heap: capped stamps can come out of order).
        self._stamps: list[float] = []
        self._in_flight = 0
        self._settled = asyncio.Event()

    async def take(self, *, cosmetic: bool) -> float:
        """Wait for a slot; the caller must `settle()` it once the request is answered."""
        if cosmetic:
            # One cosmetic caller at a time, and only while no urgent caller waits: it can take
            # at most the one slot it was already queued for ahead of an urgent one.
            async with self._cosmetic_lock:
                while self._urgent_waiting:
                    await self._urgent_idle.wait()
                return await self._take()
        self._urgent_waiting += 1
        self._urgent_idle.clear()
        try:
            return await self._take()
        finally:
            self._urgent_waiting -= 1
            if not self._urgent_waiting:
                self._urgent_idle.set()

    def settle(self, taken_at: float) -> None:
        """The request taken a slot for (at `taken_at`) is answered or failed."""
        self._in_flight -= 1
        heapq.heappush(self._stamps, min(self._clock(), taken_at + _SETTLE_CAP_S))
        self._settled.set()

    async def _take(self) -> float:
        async with self._lock:  # FIFO among waiters
            while True:
                now = self._clock()
                # (the epsilon: a float wait of a few ulps would not move the clock at all)
                while self._stamps and self._stamps[0] + self._window <= now + 1e-9:
                    heapq.heappop(self._stamps)
                if len(self._stamps) + self._in_flight < self._limit:
                    self._in_flight += 1
                    return now
                if self._stamps:
                    await self._sleep(self._window - (now - self._stamps[0]))
                else:  # every slot is in flight: the first answer starts the clock
                    self._settled.clear()
                    await self._settled.wait()


class ChatSender:
    def __init__(
        self,
        bot: Bot,
        *,
        per_chat_interval: float = 1.0,
        global_per_second: int = 30,
        global_margin: float = 0.02,
        max_attempts: int = 8,
        max_wait: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self._per_chat_interval = per_chat_interval
        self._max_attempts = max_attempts
        # Callers hold a row lease while sending; a wait longer than this is handed back
        # (SendFailedError) so the lease never runs out under a long flood wait.
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        window = 1.0 + global_margin
        # Messages and everything else (edits, chat actions) have separate budgets: an edit
        # never takes a message's slot, so progress cards cannot slow deliveries down.
        self._messages = _Budget(global_per_second, window, clock, sleep)
        self._others = _Budget(global_per_second, window, clock, sleep)
        self._chats: dict[int, _Chat] = {}

    def __len__(self) -> int:
        """Chats with bookkeeping right now (bounded: idle chats are dropped)."""
        return len(self._chats)

    def _chat(self, chat_id: int) -> _Chat:
        state = self._chats.get(chat_id)
        if state is None:
            if len(self._chats) >= _PRUNE_AT:
                self._prune()
            state = self._chats[chat_id] = _Chat()
        return state

    def _prune(self) -> None:
        now = self._clock()
        for chat_id in [c for c, s in self._chats.items() if not s.users and s.next_at <= now]:
            del self._chats[chat_id]

    async def send(self, chat_id: int, method: TelegramMethod, *, cosmetic: bool = False) -> Any:
        """Run `method` for `chat_id`; retries 429 and transient errors, raises the rest.

        `cosmetic=True` (progress edits, chat actions) yields the global budget to deliveries."""
        message = _posts_message(method)
        state = self._chat(chat_id)
        state.users += 1
        try:
            if message:
                async with state.lock:  # messages of one chat keep their order
                    return await self._run(chat_id, state, method, paced=True, cosmetic=cosmetic)
            return await self._run(chat_id, state, method, paced=False, cosmetic=cosmetic)
        finally:
            state.users -= 1
            if not state.users and state.next_at <= self._clock():
                self._chats.pop(chat_id, None)

    async def _run(self, chat_id: int, state: _Chat, method: TelegramMethod, *, paced: bool,
                   cosmetic: bool) -> Any:
        attempt = 0
        while True:
            attempt += 1
            wait = state.next_at - self._clock()
            if wait > self._max_wait:
                raise FloodWaitError(f"chat {chat_id} is under flood control")
            if wait > 0 and (paced or attempt > 1):
                await self._sleep(wait)
            budget = self._messages if paced else self._others
            taken_at = await budget.take(cosmetic=cosmetic)
            try:
                try:
                    result = await self.bot(method)
                finally:
                    budget.settle(taken_at)
            except TelegramRetryAfter as exc:
                delay = float(exc.retry_after)
                log.warning(kv("telegram flood wait", chat=chat_id, retry_after=exc.retry_after,
                               method=type(method).__name__))
                # The whole chat waits, so later messages cannot overtake this one.
                state.next_at = max(state.next_at, self._clock() + delay)
                if attempt >= self._max_attempts:
                    raise FloodWaitError(f"flood control persisted for chat {chat_id}") from None
                continue
            except TelegramForbiddenError:
                raise ChatBlockedError(chat_id) from None
            except TelegramEntityTooLarge:
                raise  # 413 is final for this content (aiogram files it as a network error)
            except (TelegramNetworkError, TelegramServerError) as exc:
                # A timed-out upload may have reached the chat: resending it at once could
                # post it several times. Hand it back (the caller defers the row) unless
                # repeating the call is harmless.
                repeatable = isinstance(exc, TelegramServerError) or not _posts_message(method)
                if attempt >= self._max_attempts or not repeatable:
                    raise SendFailedError(f"telegram unavailable: {type(exc).__name__}") from None
                await self._sleep(min(2.0 ** attempt * 0.25, 10.0))
                continue
            finally:
                if paced:
                    state.next_at = max(state.next_at, self._clock() + self._per_chat_interval)
            return result

    def forget(self, chat_id: int) -> None:
        """Drop per-chat bookkeeping for an idle chat (it is also dropped on its own)."""
        state = self._chats.get(chat_id)
        if state is not None and not state.users:
            self._chats.pop(chat_id, None)


def _posts_message(method: TelegramMethod) -> bool:
    """Whether running `method` twice would show the user two messages."""
    return not isinstance(method, SendChatAction) and type(method).__name__.startswith(
        ("Send", "Copy", "Forward")
    )
