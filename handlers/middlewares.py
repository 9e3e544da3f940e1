"""Registers (or touches) the Telegram user on every update and decides the reply language.

Handlers then receive `user` (storage User), `lang` ("ru"/"en") and `user_created` (True only on
the very first update, when the signup bonus was granted). Registering also clears `blocked`: a
user who writes to us has unblocked the bot. It costs a read per update and a write only when
something changed (Repository.register_user), so updates do not queue for SQLite's write lock. `membership_router()` follows my_chat_member
updates (blocked / unblocked) and wakes the deliverer when a user comes back.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, PreCheckoutQuery, TelegramObject

from bot.services.accounts import AccountService
from bot.services.generation import GenerationService
from handlers.texts import language_for, normalise, tr
from storage.models import Stage
from handlers.filters import Magic


_PAYLOAD = re.compile(r"^/start(?:@\w+)?\s+([A-Za-z0-9_-]{1,64})\s*$")


def start_payload(event: TelegramObject) -> str | None:
    """The deep-link payload of "/start <payload>" (t.me/<bot>?start=<payload>), else None.
    Registration stores the first one on the user row, so it survives restarts (FSM data in
    memory does not)."""
    text = getattr(event, "text", None) if isinstance(event, Message) else None
    match = _PAYLOAD.match(text or "")
    return match.group(1) if match else None


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
            start_payload=start_payload(event),
        )
        data["user"] = user
        data["user_created"] = created
        data["lang"] = normalise(user.language or language_for(tg_user.language_code))
        return await handler(event, data)


class BanMiddleware(BaseMiddleware):
    """A user an admin banned (/ban) gets one polite line per update and nothing else: no
    handler runs, so nothing is charged or queued. A button gets the line as its answer, a
    checkout is refused with it. A successful payment still runs its handler (Telegram took
    the Stars; the credits must land), and admins are never stopped."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = data.get("user")
        accounts = data.get("accounts")
        if (user is None or not user.banned or accounts is None or accounts.is_admin(user.id)
                or (isinstance(event, Message) and event.successful_payment is not None)):
            return await handler(event, data)
        line = tr(data.get("lang", "en"), "banned_notice")
        if isinstance(event, Message):
            await event.answer(line)
        elif isinstance(event, CallbackQuery):
            await event.answer(line, show_alert=True)
        elif isinstance(event, PreCheckoutQuery):
            await event.answer(ok=False, error_message=line)
        return None


# Set while a handler runs, so the retry below covers replies to users and nothing the pipeline
# sends (its ChatSender paces and retries on its own).
_IN_HANDLER: ContextVar[bool] = ContextVar("kiebot_in_handler", default=False)
# One retry_after longer than this is not waited for (the reply would come too late to matter).
_MAX_RETRY_WAIT_S = 10
# Nor are more retries once the waits of one reply add up to this.
_MAX_TOTAL_WAIT_S = 20


class HandlerContextMiddleware(BaseMiddleware):
    """Marks the time a handler runs, for ReplyRetryMiddleware below."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        token = _IN_HANDLER.set(True)
        try:
            return await handler(event, data)
        finally:
            _IN_HANDLER.reset(token)


class ReplyRetryMiddleware(BaseRequestMiddleware):
    """A reply that hits Telegram's flood limit (429) waits `retry_after` and is sent again,
    instead of being lost; only inside handlers and only for short waits.

    Bounded by the waits' total (`max_total_s`), not by a count of attempts: under a crowd past
    the global 30 sends/s every handler that was refused retries after the same retry_after,
    and a fixed number of tries gave up on unlucky ones while the herd drained (bench create on
    Postgres: 64 of 200 users got no answer at INBOX_CONCURRENCY 128). Each wait also gets up
    to `jitter_s` more, at random, so the refused do not all come back in one instant."""

    def __init__(self, *, max_total_s: float = _MAX_TOTAL_WAIT_S, jitter_s: float = 1.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        self._max_total = max_total_s
        self._jitter = jitter_s
        self._sleep = sleep
        self._rand = rand

    async def __call__(self, make_request, bot, method):  # type: ignore[no-untyped-def]
        waited = 0.0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                wait = exc.retry_after + self._jitter * self._rand()
                if (not _IN_HANDLER.get() or exc.retry_after > _MAX_RETRY_WAIT_S
                        or waited + wait > self._max_total):
                    raise
                waited += wait
                await self._sleep(wait)


def install_reply_retry(bot: Bot) -> None:
    """Once per bot session (startup may run again after a restart with the same bot)."""
    if not any(isinstance(m, ReplyRetryMiddleware) for m in bot.session.middleware._middlewares):
        bot.session.middleware(ReplyRetryMiddleware())


async def member_changed(update: ChatMemberUpdated, accounts: AccountService,
                         generations: GenerationService) -> None:
    """my_chat_member in private chats: "kicked" means the user blocked the bot, "member" that
    they unblocked (or started) it. Results finished while they were blocked wait undelivered
    (the deliverer skips blocked users); unblocking makes the deliverer send them now."""
    if update.from_user is None:
        return
    status = update.new_chat_member.status
    if status == ChatMemberStatus.KICKED:
        await accounts.set_blocked(update.from_user.id, True)
    elif status == ChatMemberStatus.MEMBER:
        if await accounts.set_blocked(update.from_user.id, False):
            generations.pipeline.kick(Stage.deliver)


def membership_router() -> Router:
    r = Router(name="membership")
    r.my_chat_member.register(member_changed, Magic(F.chat.type == "private"))
    return r
