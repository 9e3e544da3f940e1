"""Balance, Stars top-up, replayed payments, stale packs, legal texts."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import LabeledPrice

from testkit.stack import LocalStack
from tests.e2e.conversation.conftest import ADMIN_ID, click, ledger, seen


@pytest.mark.both_transports
@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_top_up_with_stars_credits_once_even_when_replayed(stack, lang):
    uid = 3000 + (lang == "ru")
    ann = stack.telegram.user(uid, first_name="Ann", language_code=lang)
    t = {
        "en": ("Balance: 50⭐", "welcome gift", "💳 Top up", "165⭐ for 150 Telegram Stars",
               "Payment received: +165⭐. Balance: 215⭐", "already credited. Balance: 215⭐"),
        "ru": ("Баланс: 50⭐", "подарок", "💳 Пополнить", "165⭐ за 150 Telegram Stars",
               "Оплата получена: +165⭐. Баланс: 215⭐", "уже зачислен. Баланс: 215⭐"),
    }[lang]
    await ann.send_command("/balance")
    shown = await seen(ann, t[0])
    assert t[1] in shown.text
    await click(ann, t[2])
    await click(ann, t[3])
    invoice = await ann.wait_until(lambda tr: next((e for e in tr if e.invoice), None))
    assert invoice.invoice["currency"] == "XTR" and invoice.invoice["total_amount"] == 150
    started = time.monotonic()
    outcome = await ann.pay()
    assert outcome.ok, outcome
    assert time.monotonic() - started < 5  # pre-checkout answered well within Telegram's 10 s
    await seen(ann, t[4])
    paid = outcome.message.raw["successful_payment"]
    for _ in range(3):  # the same service message delivered again
        ann._post({"successful_payment": paid})
    await ann.wait_until(lambda tr: sum(t[5] in e.text for e in tr if e.from_bot) == 3)
    assert await ledger(stack, uid) == [("signup_bonus", 50), ("purchase", 165)]
    assert await stack.app.repository.ledger_check() == []


async def test_stale_or_unknown_pack_is_refused_with_a_reason(webhook_stack):
    ann = webhook_stack.telegram.user(3100, first_name="Ann", language_code="en")
    await ann.send_command("/start")
    await seen(ann, "Pick a section")
    for payload, amount in (("pack:150:999:v1", 150), ("pack:50:50:v1", 49), ("order-1", 50)):
        for _ in range(5):  # the test itself sends like a bot: honour Telegram's flood limit
            try:
                await webhook_stack.app.bot.send_invoice(
                    chat_id=3100, title="Old offer", description="An offer from an older setup",
                    payload=payload, currency="XTR", prices=[LabeledPrice(label="x", amount=amount)])
                break
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
        outcome = await ann.pay()
        assert not outcome.ok and "no longer available" in outcome.error_message
    assert await ledger(webhook_stack, 3100) == [("signup_bonus", 50)]


async def test_legal_texts_default_and_configured(webhook_stack, tmp_path):
    ann = webhook_stack.telegram.user(3200, first_name="Ann", language_code="en")
    for command, needle in (("/paysupport", "Payment questions"), ("/terms", "Terms:"),
                            ("/privacy", "Privacy:")):
        await ann.send_command(command)
        await seen(ann, needle)
    async with LocalStack(tmp_path / "other", settings={
            "ADMIN_IDS": str(ADMIN_ID), "PAYSUPPORT_TEXT": "Write to @kiebot_support",
            "TERMS_TEXT": "Our terms: https://example.org/terms"}) as other:
        bob = other.telegram.user(3201, first_name="Bob", language_code="ru")
        await bob.send_command("/paysupport")
        await seen(bob, "Write to @kiebot_support")
        await bob.send_command("/terms")
        await seen(bob, "https://example.org/terms")
        await bob.send_command("/privacy")
        await seen(bob, "Конфиденциальность")
