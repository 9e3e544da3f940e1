"""A Stars payment is never lost: the handler retries the credit, a failure tells the user the
money is safe (never "try again"), and reconciliation from getStarTransactions credits it once.
Also: /refund reports what it really debited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import handlers.payments
from storage.errors import DatabaseUnavailableError
from tests.e2e.conversation.conftest import ADMIN_ID, balance, click, ledger, seen

LATER = timedelta(minutes=5)  # past the reconciler's grace for payments still being handled


def failing_credit(stack, monkeypatch, failures: int) -> list[int]:
    """The repository's credit_purchase fails `failures` times, then works again."""
    real = stack.app.repository.credit_purchase
    calls: list[int] = []

    async def credit_purchase(**kw):
        calls.append(1)
        if len(calls) <= failures:
            raise DatabaseUnavailableError("database unavailable: injected for the test")
        return await real(**kw)

    monkeypatch.setattr(stack.app.repository, "credit_purchase", credit_purchase)
    monkeypatch.setattr(handlers.payments, "CREDIT_RETRY_DELAYS_S", (0.01, 0.01))
    return calls


async def buy(user, lang: str = "en"):
    t = {"en": ("💰 Balance", "💳 Top up", "165⭐ for 150 Telegram Stars"),
         "ru": ("💰 Баланс", "💳 Пополнить", "165⭐ за 150 Telegram Stars")}[lang]
    await user.send_command("/start")
    await click(user, t[0])
    await click(user, t[1])
    await click(user, t[2])
    await user.wait_until(lambda tr: any(e.invoice for e in tr))
    outcome = await user.pay()
    assert outcome.ok, outcome
    return outcome


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_failed_credit_is_reconciled_once_and_the_user_is_never_told_to_retry(
        webhook_stack, monkeypatch, lang):
    stack = webhook_stack
    uid = 3500 + (lang == "ru")
    ann = stack.telegram.user(uid, first_name="Ann", language_code=lang)
    calls = failing_credit(stack, monkeypatch, failures=10)
    outcome = await buy(ann, lang)
    safe = await seen(ann, {"en": "Please don't pay again", "ru": "не оплачивайте повторно"}[lang])
    assert len(calls) == 3  # one attempt plus one per retry delay
    assert "try again" not in safe.text.lower() and "попробуйте" not in safe.text.lower()
    assert await balance(stack, uid) == 50
    assert all("went wrong" not in e.text for e in ann.transcript if e.from_bot)

    monkeypatch.setattr(stack.app.repository, "credit_purchase",
                        type(stack.app.repository).credit_purchase.__get__(stack.app.repository))
    now = datetime.now(UTC)
    assert await stack.app.reconciler.run(now=now) == 0  # too fresh: the handler may be on it
    assert await stack.app.reconciler.run(now=now + LATER) == 1
    await seen(ann, {"en": "Payment received: +165⭐. Balance: 215⭐",
                     "ru": "Оплата получена: +165⭐. Баланс: 215⭐"}[lang])
    assert await stack.app.reconciler.run(now=now + LATER) == 0
    assert (await stack.app.accounts.get_payment(outcome.charge_id)).credits == 165

    # The same successful_payment delivered again (Telegram retry): still credited once.
    ann._post({"successful_payment": outcome.message.raw["successful_payment"]})
    await seen(ann, {"en": "already credited", "ru": "уже зачислен"}[lang])
    assert await ledger(stack, uid) == [("signup_bonus", 50), ("purchase", 165)]
    assert await stack.app.repository.ledger_check() == []


async def test_a_passing_failure_is_retried_in_the_handler(webhook_stack, monkeypatch):
    stack = webhook_stack
    ann = stack.telegram.user(3510, first_name="Ann", language_code="en")
    calls = failing_credit(stack, monkeypatch, failures=1)
    await buy(ann)
    await seen(ann, "Payment received: +165⭐. Balance: 215⭐")
    assert len(calls) == 2
    assert await stack.app.reconciler.run(now=datetime.now(UTC) + LATER) == 0
    assert await ledger(stack, 3510) == [("signup_bonus", 50), ("purchase", 165)]


async def test_a_payment_refunded_in_telegram_is_not_credited_by_reconciliation(
        webhook_stack, monkeypatch):
    stack = webhook_stack
    ann = stack.telegram.user(3520, first_name="Ann", language_code="en")
    failing_credit(stack, monkeypatch, failures=10)
    outcome = await buy(ann)
    await seen(ann, "Please don't pay again")
    await stack.app.bot.refund_star_payment(user_id=3520,
                                            telegram_payment_charge_id=outcome.charge_id)
    monkeypatch.undo()
    assert await stack.app.reconciler.run(now=datetime.now(UTC) + LATER) == 0
    assert await ledger(stack, 3520) == [("signup_bonus", 50)]


async def test_refund_reports_only_what_was_debited(webhook_stack):
    stack = webhook_stack
    ann = stack.telegram.user(3530, first_name="Ann", language_code="en")
    admin = stack.telegram.user(ADMIN_ID, first_name="Root", language_code="en")
    outcome = await buy(ann)
    await seen(ann, "Balance: 215⭐")
    await admin.send_command("/credit", "3530 =40 spent most of it")
    await seen(admin, "balance 40⭐ (was 215⭐)")
    await admin.send_command("/refund", outcome.charge_id)
    done = await seen(admin, "Refunded 150 Telegram Stars to 3530")
    assert "debited 40⭐ of 165⭐" in done.text
    await seen(ann, "Your payment of 150 Telegram Stars was refunded. 40⭐ were taken off your balance; it is now 0⭐.")
    assert await balance(stack, 3530) == 0
    assert (await ledger(stack, 3530))[-1] == ("purchase_refund", -40)
    assert (await stack.app.accounts.get_payment(outcome.charge_id)).refunded_credits == 40


async def test_credit_retry_backs_off_then_gives_up_without_raising():
    from types import SimpleNamespace

    attempts: list[str] = []
    slept: list[float] = []

    async def credit_payment(**kw):
        attempts.append(kw["charge_id"])
        raise DatabaseUnavailableError("database unavailable: injected")

    async def sleep(seconds):
        slept.append(seconds)

    accounts = SimpleNamespace(credit_payment=credit_payment)
    result = await handlers.payments.credit_with_retry(
        accounts, sleep=sleep, user_id=1, charge_id="c", payload="p", total_amount=1)
    assert result is None
    assert attempts == ["c"] * 4 and slept == list(handlers.payments.CREDIT_RETRY_DELAYS_S)


async def test_reconciliation_runs_at_start(webhook_stack):
    from tests.conftest import wait_until

    await wait_until(lambda: any(c.method == "getStarTransactions"
                                 for c in webhook_stack.telegram.calls), timeout=10)
