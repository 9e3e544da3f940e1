"""Registers (or touches) the Telegram user on every update and decides the reply language.

Handlers then receive `user` (storage User), `lang` ("ru"/"en") and `user_created` (True only on
the very first update, when the signup bonus was granted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
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
