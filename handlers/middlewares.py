"""Registers (or touches) the Telegram user on every update and decides the reply language.

Handlers then receive `user` (storage User), `lang` ("ru"/"en") and `user_created` (True only on
the very first update, when the signup bonus was granted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import TelegramObject

from handlers.texts import language_for, normalise


class UserMiddleware(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        tg_user = data.get("event_from_user")
        accounts = data.get("accounts")
        if tg_user is None or tg_user.is_bot or accounts is None:
            data["lang"] = "en"
            data["user"] = None
            data["user_created"] = False
            return await handler(event, data)
        user, created = await accounts.register(
            tg_user.id,
            username=tg_user.username,
            first_name=tg_user.first_name,
            last_name=tg_user.last_name,
            language_code=tg_user.language_code,
        )
        data["user"] = user
        data["user_created"] = created
        data["lang"] = normalise(user.language or language_for(tg_user.language_code))
        return await handler(event, data)


# Set while a handler runs, so the retry below covers replies to users and nothing the pipeline
# sends (its ChatSender paces and retries on its own).
_IN_HANDLER: ContextVar[bool] = ContextVar("kiebot_in_handler", default=False)
_MAX_RETRY_WAIT_S = 10


class HandlerContextMiddleware(BaseMiddleware):
    async def __call__(self, handler, event, data):  # type: ignore[no-untyped-def]
        token = _IN_HANDLER.set(True)
        try:
            return await handler(event, data)
        finally:
            _IN_HANDLER.reset(token)


class ReplyRetryMiddleware(BaseRequestMiddleware):
    """A reply that hits Telegram's flood limit (429) waits `retry_after` and is sent again,
    instead of being lost; only inside handlers and only for short waits."""

    def __init__(self, *, attempts: int = 6, sleep=asyncio.sleep) -> None:
        self._attempts = attempts
        self._sleep = sleep

    async def __call__(self, make_request, bot, method):  # type: ignore[no-untyped-def]
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if (not _IN_HANDLER.get() or attempt >= self._attempts
                        or exc.retry_after > _MAX_RETRY_WAIT_S):
                    raise
                attempt += 1
                await self._sleep(exc.retry_after)


def install_reply_retry(bot: Any) -> None:
    """Once per bot session (startup may run again after a restart with the same bot)."""
    if not any(isinstance(m, ReplyRetryMiddleware) for m in bot.session.middleware._middlewares):
        bot.session.middleware(ReplyRetryMiddleware())
