"""Keeps aiogram's parsed-response models alive between calls.

aiogram parses every Bot API answer with `Response[method.__returning__]`, a pydantic generic
model built on first use. pydantic caches those in a WeakValueDictionary, so once the garbage
collector has run, the next call builds the model again (schema generation: milliseconds each).
Under a crowd that rebuilding was close to a tenth of the bot's CPU (py-spy, `make bench --only
updates`). Holding one reference per return type makes every call after the first a cache hit."""

from __future__ import annotations

from typing import Any

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import Response, TelegramMethod


class PinnedResponseModels(BaseRequestMiddleware):
    """Bot session middleware: the first call of each return type pins its Response model."""

    def __init__(self) -> None:
        self._pinned: dict[Any, type] = {}

    async def __call__(self, make_request: NextRequestMiddlewareType[Any], bot: Any,
                       method: TelegramMethod[Any]) -> Any:
        returning = method.__returning__
        if returning not in self._pinned:
            self._pinned[returning] = Response[returning]  # type: ignore[index]
        return await make_request(bot, method)
