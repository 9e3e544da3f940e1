"""/lang: switch between Russian and English (stored on the user)."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from handlers import keyboards, screens
from handlers.callbacks import LangCb
from handlers.errors import StaleMenu
from handlers.texts import LANGUAGES, tr


def router() -> Router:
    r = Router(name="lang")

    @r.message(Command("lang", "language"))
    async def choose(message: Message, lang: str) -> None:
        await message.answer(tr(lang, "lang_choose"), reply_markup=keyboards.lang_kb())

    @r.callback_query(LangCb.filter())
    async def chosen(query: CallbackQuery, callback_data: LangCb, accounts: Any) -> None:
        if callback_data.l not in LANGUAGES:
            raise StaleMenu()
        await accounts.set_language(query.from_user.id, callback_data.l)
        new = callback_data.l
        await query.answer(tr(new, "lang_set"))
        text, kb = screens.main_menu(new, await accounts.balance(query.from_user.id))
        await screens.show(query, tr(new, "lang_set") + "\n\n" + text, kb)

    return r
