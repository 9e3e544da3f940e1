"""Telegram Stars: pre-checkout (answered at once, no network) and successful_payment (once)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import F, Router
from aiogram.types import Message, PreCheckoutQuery

from bot.services.accounts import AccountService, PaymentResult
from handlers import keyboards
from handlers.texts import tr
from handlers.filters import Magic

log = logging.getLogger(__name__)

# Short: the user is looking at the payment screen. A longer outage is left to the
# reconciliation job (bot/services/reconcile.py).
CREDIT_RETRY_DELAYS_S = (0.2, 0.5, 1.0)


async def credit_with_retry(accounts: AccountService, *, delays: tuple[float, ...] | None = None,
                            sleep=asyncio.sleep, **payment: Any) -> PaymentResult | None:
    """accounts.credit_payment, tried once plus once per delay; None when every attempt failed.
    Safe to repeat: the credit is unique per charge id."""
    delays = CREDIT_RETRY_DELAYS_S if delays is None else delays
    for attempt in range(len(delays) + 1):
        try:
            return await accounts.credit_payment(**payment)
        except Exception as exc:  # noqa: BLE001 - any failure: retry, then hand to reconciliation
            log.warning("crediting payment failed (attempt %d): %s", attempt + 1,
                        type(exc).__name__)
            if attempt < len(delays):
                await sleep(delays[attempt])
    log.error("payment not credited now; reconciliation will credit it (user %s)",
              payment.get("user_id"))
    return None


async def pre_checkout(query: PreCheckoutQuery, lang: str, accounts: AccountService) -> None:
    """Telegram waits at most 10 s for this answer: only a local check of the pack, no I/O."""
    pack = accounts.check_pre_checkout(payload=query.invoice_payload, currency=query.currency,
                                       total_amount=query.total_amount)
    if pack is None:
        log.info("pre-checkout refused: stale or unknown pack")
        await query.answer(ok=False, error_message=tr(lang, "precheckout_stale"))
    else:
        await query.answer(ok=True)


async def paid(message: Message, lang: str, accounts: AccountService) -> None:
    sp = message.successful_payment
    result = await credit_with_retry(
        accounts, user_id=message.from_user.id, charge_id=sp.telegram_payment_charge_id,
        payload=sp.invoice_payload, total_amount=sp.total_amount,
    )
    if result is None:
        # Telegram already took the Stars: "try again" would make them pay twice. The
        # reconciliation job credits this charge from getStarTransactions and tells them.
        await message.answer(tr(lang, "paid_pending"))
    elif result.credited:
        await message.answer(tr(lang, "paid", credits=result.credits, balance=result.balance),
                             reply_markup=keyboards.main_menu(lang))
    else:
        await message.answer(tr(lang, "paid_again", balance=result.balance))


async def refunded(message: Message) -> None:
    """The admin's /refund already debited the credits; Telegram's notice needs no answer."""


def router() -> Router:
    r = Router(name="payments")
    r.pre_checkout_query.register(pre_checkout)
    r.message.register(paid, Magic(F.successful_payment))
    r.message.register(refunded, Magic(F.refunded_payment))
    return r
