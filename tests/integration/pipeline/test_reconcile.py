"""PaymentReconciler against a paged getStarTransactions (both orders), a real repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from aiogram.types import StarTransaction, TransactionPartnerUser, User

from bot.services.accounts import AccountService, Pack
from bot.services.reconcile import PaymentReconciler
from storage.db import create_engine
from migrations.runner import ensure_schema
from storage.repository import Repository

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PACK = Pack(50, 55)


class PagedBot:
    """getStarTransactions over a fixed list; records the offsets asked for."""

    def __init__(self, transactions: list[StarTransaction]) -> None:
        self.transactions = transactions
        self.offsets: list[int] = []

    async def get_star_transactions(self, *, offset: int = 0, limit: int = 100):
        assert 1 <= limit <= 100
        self.offsets.append(offset)
        return SimpleNamespace(transactions=self.transactions[offset: offset + limit])


def paid(charge: str, user_id: int, when: datetime, payload: str = PACK.payload,
         stars: int = PACK.stars) -> StarTransaction:
    user = User(id=user_id, is_bot=False, first_name="Ann", language_code="en")
    return StarTransaction(id=charge, amount=stars, date=when, source=TransactionPartnerUser(
        transaction_type="invoice_payment", user=user, invoice_payload=payload))


def refund(charge: str, user_id: int, when: datetime) -> StarTransaction:
    user = User(id=user_id, is_bot=False, first_name="Ann")
    return StarTransaction(id=charge, amount=PACK.stars, date=when, receiver=TransactionPartnerUser(
        transaction_type="invoice_payment", user=user, invoice_payload=PACK.payload))


@pytest.fixture
async def accounts(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/r.sqlite3")
    await ensure_schema(engine)
    repo = Repository(engine)
    yield AccountService(repo, signup_bonus=0, packs=[PACK], admin_ids=[])
    await engine.dispose()


def history(total: int) -> list[StarTransaction]:
    """`total` old payments, oldest first, all already credited by the handler (see below)."""
    start = NOW - timedelta(days=60)
    return [paid(f"old{i}", 1, start + timedelta(minutes=i)) for i in range(total)]


@pytest.mark.parametrize("newest_first", [False, True])
async def test_credits_only_missing_recent_payments_once(accounts, newest_first):
    old = history(430)  # older than the 30-day lookback: never looked at, never credited
    recent = [
        paid("lost1", 7, NOW - timedelta(hours=3)),
        paid("done1", 7, NOW - timedelta(hours=2)),
        paid("refunded1", 8, NOW - timedelta(hours=2)),
        refund("refunded1", 8, NOW - timedelta(hours=1)),
        paid("lost2", 9, NOW - timedelta(minutes=30), payload="garbage", stars=40),
        paid("fresh", 7, NOW - timedelta(seconds=5)),  # the handler is probably on it
    ]
    await accounts.register(7)
    await accounts.credit_payment(user_id=7, charge_id="done1", payload=PACK.payload,
                                  total_amount=50)
    transactions = old + recent
    if newest_first:
        transactions.reverse()
    bot = PagedBot(transactions)
    notices: list[tuple[int, int, int]] = []

    async def notify(tg_user, user, result):
        notices.append((tg_user.id, result.credits, result.balance))

    reconciler = PaymentReconciler(bot, accounts, notify=notify, clock=lambda: NOW)
    assert await reconciler.run() == 2
    assert sorted(notices) == [(7, 55, 110), (9, 40, 40)]  # unknown payload: credits = Stars
    assert await accounts.get_payment("fresh") is None
    assert await accounts.get_payment("refunded1") is None
    assert await accounts.get_payment("old0") is None
    assert await accounts.get_user(9) is not None  # paid but never registered: registered now
    assert len(bot.offsets) < 20  # the window, not the whole history

    assert await reconciler.run() == 0  # a second pass changes nothing
    assert await reconciler.run(now=NOW + timedelta(minutes=5)) == 1  # "fresh" is now due
    assert await accounts.balance(7) == 165
    assert await accounts.ledger_check() == []


async def test_short_history_is_one_call(accounts):
    bot = PagedBot([paid("a", 3, NOW - timedelta(hours=1))])
    assert await PaymentReconciler(bot, accounts, clock=lambda: NOW).run() == 1
    assert bot.offsets == [0]
    assert await accounts.balance(3) == 55


async def test_one_failing_credit_does_not_stop_the_rest(accounts, monkeypatch):
    bot = PagedBot([paid("a", 3, NOW - timedelta(hours=2)), paid("b", 4, NOW - timedelta(hours=1))])
    real = accounts.credit_payment

    async def credit_payment(**kw):
        if kw["charge_id"] == "a":
            raise RuntimeError("boom")
        return await real(**kw)

    monkeypatch.setattr(accounts, "credit_payment", credit_payment)
    assert await PaymentReconciler(bot, accounts, clock=lambda: NOW).run() == 1
    assert await accounts.balance(4) == 55
