"""/lang: switch between Russian and English (stored on the user)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.services.accounts import AccountService
from handlers import keyboards, screens
from handlers.callbacks import LangCb
from handlers.errors import StaleMenu
from handlers.texts import LANGUAGES, tr


async def choose(message: Message, lang: str) -> None:
    await message.answer(tr(lang, "lang_choose"), reply_markup=keyboards.lang_kb())


async def chosen(query: CallbackQuery, callback_data: LangCb, accounts: AccountService) -> None:
    """Stores the language and answers in it at once (not in the `lang` of this update)."""
    new = callback_data.language
    if new not in LANGUAGES:
        raise StaleMenu()
    await accounts.set_language(query.from_user.id, new)
    await query.answer(tr(new, "lang_set"))
    text, kb = screens.main_menu(new, await accounts.balance(query.from_user.id))
    await screens.show(query, tr(new, "lang_set") + "\n\n" + text, kb)


def router() -> Router:
    r = Router(name="lang")
    r.message.register(choose, Command("lang", "language"))
    r.callback_query.register(chosen, LangCb.filter())
    return r
