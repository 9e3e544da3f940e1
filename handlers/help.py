"""/help and the texts Telegram requires of bots selling digital goods; `/paysupport <message>`
(or /support) passes the message to every admin (ADMIN_IDS) and stores it (support_messages), so
an admin's Telegram reply to their copy reaches the user (handlers.admin.support_reply). The
message is keyed by the user's own message, so a replayed update reaches the admins once."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.config import Settings
from bot.services.accounts import AccountService
from handlers import keyboards, screens
from handlers.callbacks import MenuAction, MenuCb
from handlers.texts import tr

log = logging.getLogger(__name__)
_FORWARD_LIMIT = 3500  # leaves room for the header within Telegram's 4096


async def _language_of(accounts: AccountService, user_id: int) -> str:
    try:
        stored = await accounts.get_user(user_id)
    except Exception:  # noqa: BLE001 - the admin's language is a nicety
        stored = None
    return (stored.language if stored is not None else None) or "en"


async def forward_to_admins(bot: Bot, message: Message, text: str, admins: list[int],
                            accounts: AccountService) -> list[tuple[int, int]]:
    """Sends the user's support message to each admin; returns (admin id, message id) of each
    copy delivered — an admin's Telegram reply to one is passed on to the user (handlers.admin)."""
    user = message.from_user
    who = " ".join(p for p in (str(user.id), f"@{user.username}" if user.username else "",
                               user.full_name) if p)
    delivered: list[tuple[int, int]] = []
    for admin_id in admins:
        lang = await _language_of(accounts, admin_id)
        try:
            sent = await bot.send_message(admin_id, tr(lang, "support_forward", user=who,
                                                       text=text))
            delivered.append((admin_id, sent.message_id))
        except TelegramAPIError as exc:  # an admin who never started the bot, or blocked it
            log.warning("support message not delivered to an admin: %s", type(exc).__name__)
    return delivered


def _configured(settings: Settings, name: str, lang: str) -> str:
    """The operator's text from settings (PAYSUPPORT_TEXT…), else our default in `lang`."""
    return getattr(settings, f"{name}_text") or tr(lang, name)


def help_text(lang: str, user_id: int, accounts: AccountService) -> str:
    """Everyone's help; an admin's also lists the admin commands."""
    text = tr(lang, "help")
    if accounts.is_admin(user_id):
        text += "\n\n" + tr(lang, "help_admin")
        text += "\n" + tr(lang, "help_admin_promo")
    return text


async def help_cmd(message: Message, lang: str, accounts: AccountService) -> None:
    await message.answer(help_text(lang, message.from_user.id, accounts),
                         reply_markup=keyboards.main_menu(lang))


async def help_btn(query: CallbackQuery, lang: str, accounts: AccountService) -> None:
    await query.answer()
    await screens.show(query, help_text(lang, query.from_user.id, accounts),
                       keyboards.menu_only_kb(lang))


async def paysupport(message: Message, command: CommandObject, lang: str, bot: Bot,
                     settings: Settings, accounts: AccountService) -> None:
    """Without text: how to reach support. With text: forwarded to every admin."""
    text = (command.args or "").strip()
    admins = list(settings.admin_ids)
    if not text:
        await message.answer(settings.paysupport_text
                             or tr(lang, "paysupport" if admins else "paysupport_none"))
        return
    if not admins:
        await message.answer(tr(lang, "paysupport_none"))
        return
    text = text[:_FORWARD_LIMIT]
    # Keyed by the user's message before anything is forwarded: a replayed update (Telegram's
    # redelivery, the inbox after a crash) finds it stored and reaches the admins no second time.
    support_id = await accounts.claim_support_message(
        message.from_user.id, text, chat_id=message.chat.id, message_id=message.message_id)
    if support_id is None:
        await message.answer(tr(lang, "paysupport_sent"))
        return
    delivered = await forward_to_admins(bot, message, text, admins, accounts)
    await accounts.add_support_forwards(support_id, delivered)
    await message.answer(tr(lang, "paysupport_sent" if delivered else "paysupport_failed"))


async def terms(message: Message, lang: str, settings: Settings) -> None:
    await message.answer(_configured(settings, "terms", lang))


async def privacy(message: Message, lang: str, settings: Settings) -> None:
    await message.answer(_configured(settings, "privacy", lang))


def router() -> Router:
    r = Router(name="help")
    r.message.register(help_cmd, Command("help"))
    r.callback_query.register(help_btn, MenuCb.filter(F.action == MenuAction.HELP))
    r.message.register(paysupport, Command("paysupport", "support"))
    r.message.register(terms, Command("terms"))
    r.message.register(privacy, Command("privacy"))
    return r
