"""Last resort: unknown commands, unexpected messages and buttons nothing else recognised."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from handlers import keyboards
from handlers.errors import StaleMenu
from handlers.texts import tr


def router() -> Router:
    r = Router(name="fallback")

    @r.message(F.text.startswith("/"))
    async def unknown_command(message: Message, lang: str) -> None:
        await message.answer(tr(lang, "unknown_command"))

    @r.message()
    async def unexpected(message: Message, lang: str, accounts: Any) -> None:
        balance = await accounts.balance(message.from_user.id) if message.from_user else 0
        await message.answer(tr(lang, "unexpected") + "\n\n" + tr(lang, "main_menu", balance=balance),
                             reply_markup=keyboards.main_menu(lang))

    @r.callback_query()
    async def unknown_button(query: CallbackQuery) -> None:
        # Unparseable or forged data: the error router answers and shows a fresh menu.
        raise StaleMenu()

    return r
