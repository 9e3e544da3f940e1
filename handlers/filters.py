"""Filters checked on the event loop.

aiogram calls a filter that is a plain callable through `asyncio.to_thread`, and a magic filter
(`F.text`, `F.chat.type == "private"`) is one: every message paid a round trip to a worker
thread per magic filter it met on its way to a handler — a tenth of the bot's CPU under a crowd
(py-spy, `make bench --only updates`). Resolving a magic filter is a few attribute lookups, so
`Magic` resolves it inline; aiogram awaits a `Filter` directly."""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from magic_filter import MagicFilter


class Magic(Filter):
    """`Magic(F.text)` behaves like `F.text` as a filter (the value it resolves to decides,
    a dict is merged into the handler's arguments), without the worker thread."""

    __slots__ = ("rule",)

    def __init__(self, rule: MagicFilter) -> None:
        self.rule = rule

    async def __call__(self, event: Any, **_: Any) -> Any:
        return self.rule.resolve(event)

    def __invert__(self) -> Magic:
        return Magic(~self.rule)
