"""/help and the texts Telegram requires of bots selling digital goods."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from handlers import keyboards, screens
from handlers.callbacks import MenuCb
from handlers.texts import tr


def _configured(settings: Any, name: str, lang: str) -> str:
    """The operator's text from settings (PAYSUPPORT_TEXT…), else our default in `lang`."""
    value = getattr(settings, f"{name}_text", None) if settings is not None else None
    return value or tr(lang, name)


def router() -> Router:
    r = Router(name="help")

    @r.message(Command("help"))
    async def help_cmd(message: Message, lang: str) -> None:
        await message.answer(tr(lang, "help"), reply_markup=keyboards.main_menu(lang))

    @r.callback_query(MenuCb.filter(F.a == "help"))
    async def help_btn(query: CallbackQuery, lang: str) -> None:
        await query.answer()
        await screens.show(query, tr(lang, "help"), keyboards.menu_only_kb(lang))

    @r.message(Command("paysupport", "support"))
    async def paysupport(message: Message, lang: str, settings: Any = None) -> None:
        await message.answer(_configured(settings, "paysupport", lang))

    @r.message(Command("terms"))
    async def terms(message: Message, lang: str, settings: Any = None) -> None:
        await message.answer(_configured(settings, "terms", lang))

    @r.message(Command("privacy"))
    async def privacy(message: Message, lang: str, settings: Any = None) -> None:
        await message.answer(_configured(settings, "privacy", lang))

    return r
