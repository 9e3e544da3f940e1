"""The Stars path end to end, driven with getUpdates so every step is visible."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import LabeledPrice, Update

from testkit.telegram import FakeTelegram

from .conftest import TOKEN, make_bot


async def next_update(bot: Bot, seen: list[int]) -> Update:
    offset = seen[-1] + 1 if seen else None
    updates = await bot.get_updates(offset=offset, timeout=5)
    seen.append(updates[0].update_id)
    return updates[0]


async def send_invoice(bot: Bot, chat: int, payload: str = "order-1") -> None:
    await bot.send_invoice(chat, title="10 credits", description="Credit pack", payload=payload,
                           currency="XTR", prices=[LabeledPrice(label="Pack", amount=50)])


async def test_invoice_precheckout_payment_refund(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.user(1, first_name="Ann")
    seen: list[int] = []
    await send_invoice(bot, 1)
    paying = asyncio.create_task(ann.pay())
    query = (await next_update(bot, seen)).pre_checkout_query
    assert (query.currency, query.total_amount, query.invoice_payload, query.from_user.id) == ("XTR", 50, "order-1", 1)
    assert await bot.answer_pre_checkout_query(query.id, ok=True)
    outcome = await paying
    assert outcome.ok and outcome.charge_id
    paid = (await next_update(bot, seen)).message.successful_payment
    assert paid.telegram_payment_charge_id == outcome.charge_id and paid.total_amount == 50
    assert paid.provider_payment_charge_id == ""

    txs = (await bot.get_star_transactions()).transactions
    assert [(t.id, t.amount, t.source.user.id, t.source.invoice_payload) for t in txs] == \
        [(outcome.charge_id, 50, 1, "order-1")]

    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(1, "stxUnknown")
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(2, outcome.charge_id)  # someone else's charge
    assert await bot.refund_star_payment(1, outcome.charge_id)
    refunded = (await next_update(bot, seen)).message.refunded_payment
    assert refunded.telegram_payment_charge_id == outcome.charge_id and refunded.total_amount == 50
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(1, outcome.charge_id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_pre_checkout_query(query.id, ok=True)  # answering twice
    assert len((await bot.get_star_transactions()).transactions) == 2
    assert [e.kind for e in ann.transcript] == ["invoice", "successful_payment", "refunded_payment"]


async def test_refused_checkout_returns_the_error_message(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.user(1)
    await send_invoice(bot, 1)
    paying = asyncio.create_task(ann.pay())
    query = (await next_update(bot, [])).pre_checkout_query
    with pytest.raises(TelegramBadRequest, match="error_message is required"):
        await bot.answer_pre_checkout_query(query.id, ok=False)
    await bot.answer_pre_checkout_query(query.id, ok=False, error_message="Sold out")
    outcome = await paying
    assert (outcome.ok, outcome.error_message, outcome.charge_id) == (False, "Sold out", None)
    assert not fake.payments and [e.kind for e in ann.transcript] == ["invoice"]


async def test_unanswered_checkout_times_out_and_late_answer_is_too_old() -> None:
    async with FakeTelegram(token=TOKEN, precheckout_timeout=0.2) as fake:
        bot = make_bot(fake)
        try:
            ann = fake.user(1)
            await send_invoice(bot, 1)
            outcome = await ann.pay()
            assert outcome.timed_out and not outcome.ok
            query = (await next_update(bot, [])).pre_checkout_query
            with pytest.raises(TelegramBadRequest, match="query is too old"):
                await bot.answer_pre_checkout_query(query.id, ok=True)
            assert not fake.payments
        finally:
            await bot.session.close()


async def test_pay_button_on_custom_keyboard_and_invoice_link(fake: FakeTelegram, bot: Bot) -> None:
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

    ann = fake.user(1)
    pay_first = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Pay ⭐50", pay=True)]])
    not_pay = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="x")]])
    args = dict(title="t", description="d", payload="p", currency="XTR", prices=[LabeledPrice(label="P", amount=5)])
    with pytest.raises(TelegramBadRequest, match="REPLY_MARKUP_BUY_EMPTY"):
        await bot.send_invoice(1, reply_markup=not_pay, **args)
    await bot.send_invoice(1, reply_markup=pay_first, **args)
    paying = asyncio.create_task(ann.tap("Pay ⭐50"))
    query = (await next_update(bot, [])).pre_checkout_query
    await bot.answer_pre_checkout_query(query.id, ok=True)
    assert (await paying).ok
    link = await bot.create_invoice_link(**args)
    assert link.startswith("https://t.me/$")
    paying = asyncio.create_task(ann.pay(link=link))
    updates = await bot.get_updates(timeout=5, allowed_updates=["pre_checkout_query"])
    await bot.answer_pre_checkout_query(updates[-1].pre_checkout_query.id, ok=True)
    assert (await paying).ok and len(fake.payments) == 2
