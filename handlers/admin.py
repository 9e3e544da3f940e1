"""Admin commands (ADMIN_IDS only). To anyone else they do not exist: the filter fails and the
fallback router answers exactly as for any unknown command."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message, TelegramObject, User

from bot.services.accounts import AccountError
from handlers.texts import count, tr
from kie_client.catalog import CatalogError
from storage.errors import DuplicateError

log = logging.getLogger(__name__)
_LEDGER_LINES = 50  # one Telegram message (4096 characters) holds this many lines safely


class IsAdmin(Filter):
    async def __call__(self, event: TelegramObject, event_from_user: User | None = None,
                       accounts: Any = None) -> bool:
        return bool(accounts and event_from_user and accounts.is_admin(event_from_user.id))


_PERIODS = {"today": "adm_period_today", "7 days": "adm_period_week", "all": "adm_period_all"}
_STATUS_KEYS = frozenset(
    ("queued", "generating", "submit_unknown", "storing", "succeeded", "failed"))
_TG_CODE = re.compile(r"\b[A-Z][A-Z0-9_]{3,}\b")


def yes_no(lang: str, value: object) -> str:
    return tr(lang, "adm_yes" if value else "adm_no")


def status_text(lang: str, status: str) -> str:
    return tr(lang, f"status_{status}") if status in _STATUS_KEYS else status


def language_name(lang: str, code: str | None) -> str:
    return tr(lang, f"adm_lang_{code}") if code in ("ru", "en") else tr(lang, "adm_lang_none")


def model_name(catalog: Any, key: str) -> str:
    """The catalog's display name; a key the catalog no longer has is shown as stored."""
    if catalog is None:
        return key
    try:
        return catalog.get(key).name
    except CatalogError:
        return key


def account_error_text(lang: str, exc: AccountError) -> str:
    if exc.code == "below_zero":
        return tr(lang, "adm_credit_refused", balance=exc.params.get("balance", 0))
    if exc.code == "no_user":
        return tr(lang, "adm_err_no_user", who=exc.params.get("who", ""))
    if exc.code in ("bad_amount", "zero_amount", "amount_range", "bad_note"):
        return tr(lang, f"adm_err_{exc.code}")
    return tr(lang, "adm_err_generic")


def refund_error_code(exc: TelegramAPIError) -> str:
    """Telegram's machine code (CHARGE_NOT_FOUND…) is what an admin can look up; the rest of
    the exception text is noise."""
    match = _TG_CODE.search(getattr(exc, "message", "") or "")
    return match.group(0) if match else type(exc).__name__


def format_user(lang: str, rep: Any, catalog: Any = None) -> str:
    user = rep.user
    gens = "\n".join(
        tr(lang, "adm_user_gen", id=g.id, model=model_name(catalog, g.model_key),
           status=status_text(lang, g.status), cost=g.cost, date=f"{g.created_at:%d.%m %H:%M}")
        for g in rep.generations) or "—"
    pays = "\n".join(
        tr(lang, "adm_user_pay", charge=p.telegram_payment_charge_id, stars=p.stars,
           credits=p.credits, date=f"{p.created_at:%d.%m %H:%M}",
           refunded=tr(lang, "adm_user_pay_refunded") if p.refunded_at else "")
        for p in rep.payments) or "—"
    name = " ".join(x for x in (user.first_name, user.last_name) if x)
    return tr(
        lang, "adm_user", user_id=user.id, username=f"@{user.username}" if user.username else "",
        name=name, language=language_name(lang, user.language), blocked=yes_no(lang, user.blocked),
        balance=user.balance, count=count(lang, rep.generation_count, "generation"),
        generations=gens, payments=pays)


def format_stats(lang: str, stats: dict[str, dict], catalog: Any = None) -> str:
    blocks = []
    for period, s in stats.items():
        per_model: dict[str, list[str]] = {}
        for (model, status), n in sorted(s.get("generations", {}).items()):
            per_model.setdefault(model_name(catalog, model), []).append(
                f"{status_text(lang, status)} {n}")
        label = tr(lang, _PERIODS[period]) if period in _PERIODS else period
        lines = [tr(lang, "adm_stats_period", period=label)]
        lines += [f"{m}: {', '.join(v)}" for m, v in per_model.items()] or [
            tr(lang, "adm_stats_no_gens")]
        lines.append(tr(
            lang, "adm_stats_money", sold=s.get("credits_sold", 0),
            payments=count(lang, s.get("payments", 0), "payment"), stars=s.get("stars", 0),
            spent=s.get("credits_spent", 0), refunded=s.get("credits_refunded", 0),
            bonus=s.get("credits_bonus", 0)))
        blocks.append("\n".join(lines))
    return tr(lang, "adm_stats", body="\n\n".join(blocks))


def router() -> Router:
    r = Router(name="admin")
    r.message.filter(IsAdmin())
    r.callback_query.filter(IsAdmin())

    @r.message(Command("credit"))
    async def credit(message: Message, command: CommandObject, lang: str, bot: Bot,
                     accounts: Any) -> None:
        parts = (command.args or "").split(maxsplit=2)
        if len(parts) < 2:
            await message.answer(tr(lang, "adm_credit_usage"))
            return
        who, amount = parts[0], parts[1]
        note = parts[2].strip() if len(parts) > 2 else None
        try:
            res = await accounts.admin_credit(who, amount, admin_id=message.from_user.id, note=note)
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

    @r.message(Command("user"))
    async def user_cmd(message: Message, command: CommandObject, lang: str, accounts: Any,
                       catalog: Any = None) -> None:
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

    @r.message(Command("stats"))
    async def stats(message: Message, lang: str, accounts: Any, catalog: Any = None) -> None:
        await message.answer(format_stats(lang, await accounts.stats(), catalog))

    @r.message(Command("refund"))
    async def refund(message: Message, command: CommandObject, lang: str, bot: Bot,
                     accounts: Any) -> None:
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

    @r.message(Command("ledgercheck"))
    async def ledgercheck(message: Message, lang: str, accounts: Any) -> None:
        bad = await accounts.ledger_check()
        if not bad:
            await message.answer(tr(lang, "adm_ledger_ok"))
        else:
            lines = "\n".join(f"{u}: {b}⭐ / {s}⭐" for u, b, s in bad[:_LEDGER_LINES])
            more = tr(lang, "adm_ledger_more", n=len(bad) - _LEDGER_LINES) if len(bad) > _LEDGER_LINES else ""
            await message.answer(tr(lang, "adm_ledger_bad", users=len(bad), lines=lines, more=more))

    return r
