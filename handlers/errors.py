"""Error router: stale or tampered buttons get "this menu has expired" and a fresh menu; any other
failure gets a polite apology. Nothing reaches the user as a traceback."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import CallbackQuery, ErrorEvent

from bot.services.accounts import AccountService
from handlers import keyboards
from handlers.middlewares import HandlerContextMiddleware
from handlers.texts import language_for, tr

log = logging.getLogger(__name__)


class StaleMenu(Exception):
    """A button that no longer matches the user's state (older card, unknown id, bad index)."""


async def _language(event: ErrorEvent, accounts: AccountService) -> str:
    user = event.update.event.from_user if hasattr(event.update.event, "from_user") else None
    if user is None:
        return "en"
    try:
        stored = await accounts.get_user(user.id)
    except Exception:  # noqa: BLE001 - the language is a nicety while reporting another error
        stored = None
    return (stored.language if stored and stored.language else None) or language_for(user.language_code)


async def send_expired(bot: Bot, chat_id: int, lang: str, balance: int) -> None:
    await bot.send_message(chat_id, tr(lang, "expired") + "\n\n" + tr(lang, "main_menu", balance=balance),
                           reply_markup=keyboards.main_menu(lang))


async def stale_button(event: ErrorEvent, bot: Bot, accounts: AccountService) -> bool:
    """The button's toast says the menu expired; a fresh main menu follows in the chat."""
    lang = await _language(event, accounts)
    query = event.update.callback_query
    if query is not None:
        await _answer_quietly(query, tr(lang, "expired"))
    chat_id = _chat_id(event)
    if chat_id is not None:
        user = getattr(event.update.event, "from_user", None)
        try:
            balance = await accounts.balance(user.id) if user else 0
            await send_expired(bot, chat_id, lang, balance)
        except Exception:  # noqa: BLE001 - the callback was answered; nothing else to do
            log.warning("could not send the fresh menu")
    return True


async def anything_else(event: ErrorEvent, bot: Bot, accounts: AccountService) -> bool:
    """Logged with its traceback for us; the user gets one polite sentence."""
    log.error("handler failed on update %s: %s", event.update.update_id,
              type(event.exception).__name__, exc_info=event.exception)
    lang = await _language(event, accounts)
    query = event.update.callback_query
    if query is not None:
        await _answer_quietly(query, tr(lang, "error_generic"))
    chat_id = _chat_id(event)
    if chat_id is not None:
        try:
            await bot.send_message(chat_id, tr(lang, "error_generic"))
        except Exception:  # noqa: BLE001 - nothing more we can do for this update
            log.warning("could not tell chat about the failure")
    return True


async def _answer_quietly(query: CallbackQuery, text: str) -> None:
    try:
        await query.answer(text)
    except Exception:  # noqa: BLE001 - already answered or too old; the fresh menu follows anyway
        pass


def _chat_id(event: ErrorEvent) -> int | None:
    update = event.update
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None and update.callback_query.message is not None:
        return update.callback_query.message.chat.id
    return None


def router() -> Router:
    r = Router(name="errors")
    r.errors.middleware(HandlerContextMiddleware())  # its replies get the 429 retry too
    r.errors.register(stale_button, ExceptionTypeFilter(StaleMenu))
    r.errors.register(anything_else)
    return r
