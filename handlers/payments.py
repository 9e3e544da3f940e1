"""Telegram Stars: pre-checkout (answered at once, no network) and successful_payment (once)."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import F, Router
from aiogram.types import Message, PreCheckoutQuery

from handlers import keyboards
from handlers.texts import tr

log = logging.getLogger(__name__)


def router() -> Router:
    r = Router(name="payments")

    @r.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery, lang: str, accounts: Any) -> None:
        pack = accounts.check_pre_checkout(payload=query.invoice_payload, currency=query.currency,
                                           total_amount=query.total_amount)
        if pack is None:
            log.info("pre-checkout refused: stale or unknown pack")
            await query.answer(ok=False, error_message=tr(lang, "precheckout_stale"))
        else:
            await query.answer(ok=True)

    @r.message(F.successful_payment)
    async def paid(message: Message, lang: str, accounts: Any) -> None:
        sp = message.successful_payment
        result = await accounts.credit_payment(
            user_id=message.from_user.id, charge_id=sp.telegram_payment_charge_id,
            payload=sp.invoice_payload, total_amount=sp.total_amount,
        )
        if result.credited:
            await message.answer(tr(lang, "paid", credits=result.credits, balance=result.balance),
                                 reply_markup=keyboards.main_menu(lang))
        else:
            await message.answer(tr(lang, "paid_again", balance=result.balance))

    @r.message(F.refunded_payment)
    async def refunded(message: Message) -> None:
        # The admin's /refund already debited the credits; Telegram's notice needs no answer.
        return None

    return r
