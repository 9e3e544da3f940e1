"""Admin commands (ADMIN_IDS only). To anyone else they do not exist: the filter fails and the
fallback router answers exactly as for any unknown command. Their texts: handlers.admin_reports."""

from __future__ import annotations

import logging
import re

from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message, TelegramObject
from aiogram.types import User as TelegramUser

from bot.services.accounts import AccountError, AccountService
from handlers.admin_reports import account_error_text, format_stats, format_user
from handlers.texts import tr
from kie_client.catalog import Catalog
from storage.errors import DuplicateError

log = logging.getLogger(__name__)
_LEDGER_LINES = 50  # one Telegram message (4096 characters) holds this many lines safely
_REPLY_LIMIT = 4000  # room for the "support's answer" line within Telegram's 4096
_CAPTION_LIMIT = 1000  # the same within a caption's 1024
_TG_CODE = re.compile(r"\b[A-Z][A-Z0-9_]{3,}\b")

__all__ = ["IsAdmin", "account_error_text", "format_stats", "format_user", "router"]


class IsAdmin(Filter):
    async def __call__(self, event: TelegramObject, accounts: AccountService,
                       event_from_user: TelegramUser | None = None) -> bool:
        return bool(event_from_user and accounts.is_admin(event_from_user.id))


def refund_error_code(exc: TelegramAPIError) -> str:
    """Telegram's machine code (CHARGE_NOT_FOUND…) is what an admin can look up; the rest of
    the exception text is noise."""
    match = _TG_CODE.search(getattr(exc, "message", "") or "")
    return match.group(0) if match else type(exc).__name__


async def credit(message: Message, command: CommandObject, lang: str, bot: Bot,
                 accounts: AccountService) -> None:
    """`/credit <who> <+N|-N|=N> [note]`; the user is told of the change in their language.
    The change is keyed by this message, so the same update handled again (Telegram's
    redelivery, the inbox replaying it after a crash) moves no money twice; a replay answers the
    admin with the balance as it is and tells the user nothing new."""
    parts = (command.args or "").split(maxsplit=2)
    if len(parts) < 2:
        await message.answer(tr(lang, "adm_credit_usage"))
        return
    who, amount = parts[0], parts[1]
    note = parts[2].strip() if len(parts) > 2 else None
    try:
        res = await accounts.admin_credit(
            who, amount, admin_id=message.from_user.id, note=note,
            idempotency_key=f"credit:{message.chat.id}:{message.message_id}")
    except AccountError as exc:
        await message.answer(f"{account_error_text(lang, exc)}\n{tr(lang, 'adm_credit_usage')}")
        return
    await message.answer(tr(lang, "adm_credit_done", user_id=res.user.id,
                            balance=res.new_balance, old=res.old_balance))
    if res.delta:
        user_lang = res.user.language or "en"
        try:
            await bot.send_message(res.user.id, tr(
                user_lang, "adm_credit_notice", delta=f"{res.delta:+d}",
                note=f" ({note})" if note else "", balance=res.new_balance))
        except TelegramAPIError as exc:
            log.info("credit notice not delivered: %s", type(exc).__name__)


async def user_report(message: Message, command: CommandObject, lang: str,
                      accounts: AccountService, catalog: Catalog) -> None:
    who = (command.args or "").strip()
    if not who:
        await message.answer(tr(lang, "adm_user_usage"))
        return
    user = await accounts.find_user(who)
    if user is None:
        await message.answer(tr(lang, "adm_no_user", who=who))
        return
    rep = await accounts.user_report(user)
    await message.answer(format_user(lang, rep, catalog))


async def stats(message: Message, lang: str, accounts: AccountService, catalog: Catalog) -> None:
    await message.answer(format_stats(lang, await accounts.stats(), catalog))


async def refund(message: Message, command: CommandObject, lang: str, bot: Bot,
                 accounts: AccountService) -> None:
    """`/refund <charge id>`: the Stars go back through Telegram first, then the credits are
    debited once (never below zero)."""
    charge = (command.args or "").strip()
    if not charge or " " in charge:
        await message.answer(tr(lang, "adm_refund_usage"))
        return
    payment = await accounts.get_payment(charge)
    if payment is None:
        await message.answer(tr(lang, "adm_refund_unknown", charge=charge))
        return
    if payment.refunded_at is not None:
        await message.answer(tr(lang, "adm_refund_already", charge=charge))
        return
    try:
        await bot.refund_star_payment(user_id=payment.user_id, telegram_payment_charge_id=charge)
    except TelegramBadRequest as exc:
        # Refunded outside the bot already: still take the credits back below.
        if "CHARGE_ALREADY_REFUNDED" not in str(exc):
            await message.answer(tr(lang, "adm_refund_tg_failed", reason=refund_error_code(exc)))
            return
    except TelegramAPIError as exc:  # network, flood control, Telegram's own 5xx
        log.info("refund not sent: %s", type(exc).__name__)
        await message.answer(tr(lang, "adm_refund_unreachable"))
        return
    try:
        reversed_ = await accounts.reverse_purchase(charge, admin_id=message.from_user.id)
    except DuplicateError:
        await message.answer(tr(lang, "adm_refund_already", charge=charge))
        return
    if reversed_ is None:  # the payment row vanished between the lookup and the debit
        await message.answer(tr(lang, "adm_refund_unknown", charge=charge))
        return
    # Only what was left on the balance is debited; report that, not the pack size.
    debited = int(reversed_.refunded_credits or 0)
    if debited == reversed_.credits:
        await message.answer(tr(lang, "adm_refund_done", stars=payment.stars,
                                user_id=payment.user_id, credits=debited))
    else:
        await message.answer(tr(lang, "adm_refund_partial", stars=payment.stars,
                                user_id=payment.user_id, credits=debited,
                                bought=reversed_.credits))
    await _tell_refunded(bot, accounts, payment.user_id, stars=payment.stars, debited=debited)


async def _tell_refunded(bot: Bot, accounts: AccountService, user_id: int, *, stars: int,
                         debited: int) -> None:
    """The buyer hears of the refund in their language, with what it did to their balance. Sent
    once: a replayed /refund finds the payment refunded and stops before this."""
    user = await accounts.get_user(user_id)
    if user is None:
        return
    user_lang = user.language or "en"
    key = "refund_notice" if debited else "refund_notice_spent"
    try:
        await bot.send_message(user_id, tr(user_lang, key, stars=stars, credits=debited,
                                           balance=user.balance))
    except TelegramAPIError as exc:  # blocked the bot: the admin's answer above still stands
        log.info("refund notice not delivered: %s", type(exc).__name__)


async def ledgercheck(message: Message, lang: str, accounts: AccountService) -> None:
    bad = await accounts.ledger_check()
    if not bad:
        await message.answer(tr(lang, "adm_ledger_ok"))
        return
    lines = "\n".join(f"{u}: {b}⭐ / {s}⭐" for u, b, s in bad[:_LEDGER_LINES])
    more = tr(lang, "adm_ledger_more", n=len(bad) - _LEDGER_LINES) if len(bad) > _LEDGER_LINES else ""
    await message.answer(tr(lang, "adm_ledger_bad", users=len(bad), lines=lines, more=more))


async def _ban(message: Message, command: CommandObject, lang: str,
               accounts: AccountService, banned: bool) -> None:
    who = (command.args or "").strip()
    if not who or " " in who:
        await message.answer(tr(lang, "adm_ban_usage"))
        return
    user = await accounts.find_user(who)
    if user is None:
        await message.answer(tr(lang, "adm_no_user", who=who))
        return
    if banned and accounts.is_admin(user.id):
        await message.answer(tr(lang, "adm_ban_admin"))
        return
    changed = await accounts.set_banned(user.id, banned)
    if banned:
        key = "adm_banned" if changed else "adm_ban_already"
    else:
        key = "adm_unbanned" if changed else "adm_unban_already"
    await message.answer(tr(lang, key, user_id=user.id))


async def ban(message: Message, command: CommandObject, lang: str,
              accounts: AccountService) -> None:
    """`/ban <id|@username>`: from the next update on, the user gets one line and nothing else
    (handlers.middlewares.BanMiddleware)."""
    await _ban(message, command, lang, accounts, True)


async def unban(message: Message, command: CommandObject, lang: str,
                accounts: AccountService) -> None:
    await _ban(message, command, lang, accounts, False)


class RepliesToSupport(Filter):
    """An admin's reply (a text, or a photo with or without a caption) to the bot's copy of a
    /paysupport message: gives the handler `support` = (support id, user id). Any other reply
    goes on to the next handlers."""

    async def __call__(self, message: Message, accounts: AccountService,
                       bot: Bot) -> bool | dict[str, Any]:
        replied = message.reply_to_message
        if (replied is None or not (message.text or message.photo)
                or (message.text or "").startswith("/")
                or replied.from_user is None or replied.from_user.id != bot.id):
            return False
        found = await accounts.support_for_forward(message.chat.id, replied.message_id)
        return {"support": found} if found else False


async def support_reply(message: Message, lang: str, bot: Bot, accounts: AccountService,
                        support: tuple[int, int]) -> None:
    """The admin's reply goes to the user as support's answer, in the user's language. Keyed by
    the admin's message, so a replayed update passes it on once (the admin hears so)."""
    support_id, user_id = support
    photo = message.photo[-1].file_id if message.photo else None
    limit = _CAPTION_LIMIT if photo else _REPLY_LIMIT
    text = ((message.caption if photo else message.text) or "")[:limit]
    # The stored text of a bare photo says what it was (the column needs a text).
    if not await accounts.record_support_reply(support_id, message.chat.id, message.message_id,
                                               text or "[photo]"):
        await message.answer(tr(lang, "adm_support_reply_dup", user_id=user_id))
        return
    user = await accounts.get_user(user_id)
    user_lang = (user.language if user is not None else None) or "en"
    try:
        if photo:
            caption = (tr(user_lang, "support_answer", text=text) if text
                       else tr(user_lang, "support_answer_photo"))
            await bot.send_photo(user_id, photo, caption=caption)
        else:
            await bot.send_message(user_id, tr(user_lang, "support_answer", text=text))
    except TelegramAPIError as exc:
        log.info("support answer not delivered: %s", type(exc).__name__)
        await message.answer(tr(lang, "adm_support_reply_failed", user_id=user_id))
        return
    await message.answer(tr(lang, "adm_support_reply_sent", user_id=user_id))


def router() -> Router:
    r = Router(name="admin")
    r.message.filter(IsAdmin())
    r.callback_query.filter(IsAdmin())
    r.message.register(credit, Command("credit"))
    r.message.register(user_report, Command("user"))
    r.message.register(stats, Command("stats"))
    r.message.register(refund, Command("refund"))
    r.message.register(ledgercheck, Command("ledgercheck"))
    r.message.register(ban, Command("ban"))
    r.message.register(unban, Command("unban"))
    r.message.register(support_reply, RepliesToSupport())
    return r
