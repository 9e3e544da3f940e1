"""Last resort: unknown commands, unexpected messages and buttons nothing else recognised."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.services.accounts import AccountService
from handlers import keyboards
from handlers.errors import StaleMenu
from handlers.texts import tr
from handlers.filters import Magic


async def unknown_command(message: Message, lang: str) -> None:
    await message.answer(tr(lang, "unknown_command"))


async def unexpected(message: Message, lang: str, accounts: AccountService) -> None:
    balance = await accounts.balance(message.from_user.id) if message.from_user else 0
    await message.answer(tr(lang, "unexpected") + "\n\n" + tr(lang, "main_menu", balance=balance),
                         reply_markup=keyboards.main_menu(lang))


async def unknown_button(query: CallbackQuery) -> None:
    """Unparseable or forged data: the error router answers and shows a fresh menu."""
    raise StaleMenu()


def router() -> Router:
    r = Router(name="fallback")
    r.message.register(unknown_command, Magic(F.text.startswith("/")))
    r.message.register(unexpected)
    r.callback_query.register(unknown_button)
    return r
