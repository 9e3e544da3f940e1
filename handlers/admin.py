"""Admin commands (ADMIN_IDS only). To anyone else they do not exist: the filter fails and the
fallback router answers exactly as for any unknown command."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message, TelegramObject, User

from bot.services.accounts import AccountError
from handlers.texts import tr
from storage.errors import DuplicateError

log = logging.getLogger(__name__)


class IsAdmin(Filter):
    async def __call__(self, event: TelegramObject, event_from_user: User | None = None,
                       accounts: Any = None) -> bool:
        return bool(accounts and event_from_user and accounts.is_admin(event_from_user.id))


def format_stats(lang: str, stats: dict[str, dict]) -> str:
    blocks = []
    for period, s in stats.items():
        per_model: dict[str, list[str]] = {}
        for (model, status), n in sorted(s.get("generations", {}).items()):
            per_model.setdefault(model, []).append(f"{status} {n}")
        lines = [f"— {period} —"]
        lines += [f"{m}: {', '.join(v)}" for m, v in per_model.items()] or ["no generations"]
        lines.append(
            f"sold {s.get('credits_sold', 0)}⭐ ({s.get('payments', 0)} payments, "
            f"{s.get('stars', 0)} Stars) · spent {s.get('credits_spent', 0)}⭐ · "
            f"refunded {s.get('credits_refunded', 0)}⭐ · bonus {s.get('credits_bonus', 0)}⭐"
        )
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
        note = parts[2] if len(parts) > 2 else ""
        try:
            res = await accounts.admin_credit(who, amount, admin_id=message.from_user.id, note=note)
        except AccountError as exc:
            await message.answer(f"{exc.reason}\n{tr(lang, 'adm_credit_usage')}")
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
    async def user_cmd(message: Message, command: CommandObject, lang: str, accounts: Any) -> None:
        who = (command.args or "").strip()
        if not who:
            await message.answer(tr(lang, "adm_user_usage"))
            return
        user = await accounts.find_user(who)
        if user is None:
            await message.answer(tr(lang, "adm_no_user", who=who))
            return
        rep = await accounts.user_report(user)
        gens = "\n".join(
            f"#{g.id} {g.model_key} {g.status} {g.cost}⭐ {g.created_at:%d.%m %H:%M}"
            for g in rep.generations) or "—"
        pays = "\n".join(
            f"{p.telegram_payment_charge_id}: {p.stars} Stars → {p.credits}⭐ {p.created_at:%d.%m %H:%M}"
            + (" (refunded)" if p.refunded_at else "") for p in rep.payments) or "—"
        name = " ".join(x for x in (user.first_name, user.last_name) if x)
        await message.answer(tr(
            lang, "adm_user", user_id=user.id, username=f"@{user.username}" if user.username else "",
            name=name, language=user.language or "?", blocked=user.blocked, balance=user.balance,
            count=rep.generation_count, generations=gens, payments=pays))

    @r.message(Command("stats"))
    async def stats(message: Message, lang: str, accounts: Any) -> None:
        await message.answer(format_stats(lang, await accounts.stats()))

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
                await message.answer(tr(lang, "adm_refund_tg_failed", reason=exc.message))
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
            lines = "\n".join(f"{u}: {b} / {s}" for u, b, s in bad[:50])
            await message.answer(tr(lang, "adm_ledger_bad", lines=lines))

    return r
