"""/help and the texts Telegram requires of bots selling digital goods; `/paysupport <message>`
passes the message to every admin (ADMIN_IDS)."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from handlers import keyboards, screens
from handlers.callbacks import MenuCb
from handlers.texts import tr

log = logging.getLogger(__name__)
_FORWARD_LIMIT = 3500  # leaves room for the header within Telegram's 4096


async def _language_of(accounts: Any, user_id: int) -> str:
    try:
        stored = await accounts.get_user(user_id) if accounts is not None else None
    except Exception:  # noqa: BLE001 - the admin's language is a nicety
        stored = None
    return (stored.language if stored is not None else None) or "en"


async def forward_to_admins(bot: Bot, message: Message, text: str, admins: list[int],
                            accounts: Any) -> int:
    """Sends the user's support message to each admin; returns how many got it."""
    user = message.from_user
    who = " ".join(p for p in (str(user.id), f"@{user.username}" if user.username else "",
                               user.full_name) if p)
    delivered = 0
    for admin_id in admins:
        lang = await _language_of(accounts, admin_id)
        try:
            await bot.send_message(admin_id, tr(lang, "support_forward", user=who,
                                                text=text[:_FORWARD_LIMIT]))
            delivered += 1
        except TelegramAPIError as exc:  # an admin who never started the bot, or blocked it
            log.warning("support message not delivered to an admin: %s", type(exc).__name__)
    return delivered


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
    async def paysupport(message: Message, command: CommandObject, lang: str, bot: Bot,
                         settings: Any = None, accounts: Any = None) -> None:
        text = (command.args or "").strip()
        admins = list(getattr(settings, "admin_ids", None) or [])
        if not text:
            override = getattr(settings, "paysupport_text", None) if settings is not None else None
            await message.answer(override or tr(lang, "paysupport" if admins else "paysupport_none"))
            return
        if not admins:
            await message.answer(tr(lang, "paysupport_none"))
            return
        delivered = await forward_to_admins(bot, message, text, admins, accounts)
        await message.answer(tr(lang, "paysupport_sent" if delivered else "paysupport_failed"))

    @r.message(Command("terms"))
    async def terms(message: Message, lang: str, settings: Any = None) -> None:
        await message.answer(_configured(settings, "terms", lang))

    @r.message(Command("privacy"))
    async def privacy(message: Message, lang: str, settings: Any = None) -> None:
        await message.answer(_configured(settings, "privacy", lang))

    return r
