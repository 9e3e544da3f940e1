"""Telegram-like flood control: token buckets per chat and overall.

Per chat: about 1 message per second with a burst of 3; overall: 30 messages per second. Only
message-sending methods are counted (send*, copy*, forward*; sendMediaGroup counts each item).
Edits, deletions and sendChatAction are not counted: Telegram is visibly more lenient with them
and counting them would make a well-behaved progress bar look abusive.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class FloodEvent:
    """One 429 the fake issued (by flood control or a fault), for tests to assert on."""

    method: str
    chat_id: Any
    retry_after: int
    at: float
    reason: str = "flood"


@dataclass
class _Bucket:
    capacity: float
    rate: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, cost: float) -> float:
        return max(0.0, (cost - self.tokens) / self.rate)


@dataclass
class FloodControl:
    per_chat_rate: float = 1.0
    per_chat_burst: float = 3.0
    global_rate: float = 30.0
    global_burst: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _chats: dict[Any, _Bucket] = field(default_factory=dict)
    _global: _Bucket | None = None

    def take(self, chat_id: Any, cost: int = 1) -> int | None:
        """Spend cost tokens; return None if allowed, else whole seconds to wait (≥ 1)."""
        now = self.clock()
        if self._global is None:
            self._global = _Bucket(self.global_burst, self.global_rate, self.global_burst, now)
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Bucket(self.per_chat_burst, self.per_chat_rate, self.per_chat_burst, now)
        chat.refill(now)
        self._global.refill(now)
        wait = max(chat.wait_for(cost), self._global.wait_for(cost))
        if wait > 0:
            return max(1, math.ceil(wait))
        chat.tokens -= cost
        self._global.tokens -= cost
        return None


def counted(method: str) -> bool:
    lowered = method.lower()
    if lowered == "sendchataction":
        return False
    return lowered.startswith(("send", "copymessage", "forwardmessage"))
