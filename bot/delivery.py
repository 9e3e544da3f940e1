"""ChatSender: the single way the pipeline talks to chats, within Telegram's flood limits.

One instance per process (built in the composition root). It spaces calls to ≤1 per second per
chat and ≤30 per second overall, waits out 429 retry_after instead of dropping a message, and
turns "bot was blocked" into ChatBlockedError so callers mark the user and stop trying.
"""

from __future__ import annotations

import asyncio
import collections
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


class ChatBlockedError(Exception):
    """The user blocked the bot (403); sending again would only fail again."""

    def __init__(self, chat_id: int) -> None:
        super().__init__(f"chat {chat_id} blocked the bot")
        self.chat_id = chat_id


class SendFailedError(Exception):
    """Telegram kept refusing or was unreachable; the caller keeps the work for a later pass."""


def is_not_modified(exc: TelegramBadRequest) -> bool:
    return "message is not modified" in str(exc).lower()


class ChatSender:
    def __init__(
        self,
        bot: Bot,
        *,
        per_chat_interval: float = 1.0,
        global_per_second: int = 30,
        max_attempts: int = 8,
        max_wait: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self._per_chat_interval = per_chat_interval
        self._global_limit = global_per_second
        self._max_attempts = max_attempts
        # Callers hold a row lease while sending; a wait longer than this is handed back
        # (SendFailedError) so the lease never runs out under a long flood wait.
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._global_lock = asyncio.Lock()
        self._sent: collections.deque[float] = collections.deque()
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._chat_next: dict[int, float] = {}

    async def _global_slot(self) -> None:
        async with self._global_lock:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= 1.0:
                    self._sent.popleft()
                if len(self._sent) < self._global_limit:
                    self._sent.append(now)
                    return
                await self._sleep(1.0 - (now - self._sent[0]))

    async def send(self, chat_id: int, method: TelegramMethod) -> Any:
        """Run `method` for `chat_id`; retries 429 and transient errors, raises the rest."""
        throttled = not isinstance(method, SendChatAction)
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        attempt = 0
        async with lock:
            while True:
                attempt += 1
                if throttled:
                    wait = self._chat_next.get(chat_id, 0.0) - self._clock()
                    if wait > self._max_wait:
                        raise SendFailedError(f"chat {chat_id} is under flood control")
                    if wait > 0:
                        await self._sleep(wait)
                    await self._global_slot()
                try:
                    result = await self.bot(method)
                except TelegramRetryAfter as exc:
                    delay = float(exc.retry_after)
                    log.warning(kv("telegram flood wait", chat=chat_id, retry_after=exc.retry_after,
                                   method=type(method).__name__))
                    # The whole chat waits, so later messages cannot overtake this one.
                    self._chat_next[chat_id] = self._clock() + delay
                    if attempt >= self._max_attempts:
                        raise SendFailedError(f"flood control persisted for chat {chat_id}") from None
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
                    if throttled:
                        self._chat_next[chat_id] = max(
                            self._chat_next.get(chat_id, 0.0),
                            self._clock() + self._per_chat_interval,
                        )
                return result

    def forget(self, chat_id: int) -> None:
        """Drop per-chat bookkeeping for idle chats (bounded memory on long runs)."""
        lock = self._chat_locks.get(chat_id)
        if lock is not None and not lock.locked():
            self._chat_locks.pop(chat_id, None)
            self._chat_next.pop(chat_id, None)


def _posts_message(method: TelegramMethod) -> bool:
    """Whether running `method` twice would show the user two messages."""
    return not isinstance(method, SendChatAction) and type(method).__name__.startswith(
        ("Send", "Copy", "Forward")
    )
