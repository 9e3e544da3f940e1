"""AccountService over the real Repository (SQLite file and Postgres)."""

from __future__ import annotations

import uuid

import pytest

from bot.config import TopUpPack
from bot.services.accounts import AccountError, AccountService, Pack, parse_payload
from storage.db import create_engine
from storage.errors import DuplicateError
from migrations.runner import ensure_schema
from storage.repository import Repository

PACKS = [TopUpPack(stars=50, credits=50), TopUpPack(stars=150, credits=165)]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/a.sqlite3"
    return request.getfixturevalue("pg_database")  # a database of its own, already migrated


@pytest.fixture
async def accounts(database_url):
    engine = create_engine(database_url)
    await ensure_schema(engine)
    yield AccountService(Repository(engine), signup_bonus=50, packs=PACKS, admin_ids=[1])
    await engine.dispose()


def _uid() -> int:
    return 10_000_000 + uuid.uuid4().int % 1_000_000_000


async def test_register_grants_bonus_once_and_picks_language(accounts):
    uid = _uid()
    user, created = await accounts.register(uid, username="ann", first_name="Ann", language_code="uk")
    assert created and user.balance == 50 and user.language == "ru"
    user, created = await accounts.register(uid, username="ann", first_name="Ann", language_code="en")
    assert not created and user.balance == 50 and user.language == "ru"
    await accounts.set_language(uid, "en")
    assert (await accounts.get_user(uid)).language == "en"
    with pytest.raises(AccountError):
        await accounts.set_language(uid, "de")
    assert [e.reason for e in await accounts.ledger(uid)] == ["signup_bonus"]


def test_pre_checkout_accepts_only_current_packs_at_their_price(accounts):
    good = Pack(150, 165).payload
    assert accounts.check_pre_checkout(payload=good, currency="XTR", total_amount=150) == Pack(150, 165)
    assert accounts.check_pre_checkout(payload=good, currency="XTR", total_amount=149) is None
    assert accounts.check_pre_checkout(payload=good, currency="USD", total_amount=150) is None
    stale = Pack(150, 200).payload
    assert accounts.check_pre_checkout(payload=stale, currency="XTR", total_amount=150) is None
    for junk in ("", "pack", "pack:a:b:v1", "pack:1:2:v0", "order-1", "pack:-5:5:v1"):
        assert parse_payload(junk) is None
        assert accounts.check_pre_checkout(payload=junk, currency="XTR", total_amount=5) is None


async def test_payment_credits_once_per_charge_and_reverses_once(accounts):
    uid = _uid()
    await accounts.register(uid, username=None, first_name="B", language_code="en")
    charge = f"stx{uuid.uuid4().hex}"
    results = [await accounts.credit_payment(user_id=uid, charge_id=charge,
                                             payload=Pack(150, 165).payload, total_amount=150)
               for _ in range(3)]
    assert [r.credited for r in results] == [True, False, False]
    assert results[0].credits == 165 and results[-1].balance == 215
    payment = await accounts.get_payment(charge)
    assert payment.user_id == uid and payment.stars == 150
    await accounts.reverse_purchase(charge, admin_id=1)
    assert await accounts.balance(uid) == 50
    with pytest.raises(DuplicateError):
        await accounts.reverse_purchase(charge, admin_id=1)
    assert await accounts.ledger_check() == [] or all(u != uid for u, _, _ in await accounts.ledger_check())


async def test_admin_credit_plus_minus_set_and_never_below_zero(accounts):
    uid = _uid()
    name = f"u{uid}"
    await accounts.register(uid, username=name, first_name="C", language_code="ru")
    res = await accounts.admin_credit(str(uid), "+10", admin_id=1, note="gift")
    assert (res.old_balance, res.new_balance, res.delta) == (50, 60, 10)
    res = await accounts.admin_credit(f"@{name.upper()}", "-20", admin_id=1)
    assert res.new_balance == 40
    res = await accounts.admin_credit(name, "=7", admin_id=1)
    assert res.new_balance == 7
    with pytest.raises(AccountError, match="below zero"):
        await accounts.admin_credit(str(uid), "-8", admin_id=1)
    for bad in ("10", "+x", "", "*5", "+1.5"):
        with pytest.raises(AccountError):
            await accounts.admin_credit(str(uid), bad, admin_id=1)
    with pytest.raises(AccountError, match="no such user"):
        await accounts.admin_credit("@nobody_here_at_all", "+1", admin_id=1)
    assert await accounts.balance(uid) == 7
    report = await accounts.user_report(await accounts.find_user(str(uid)))
    assert report.generation_count == 0 and report.payments == []
    stats = await accounts.stats()
    assert set(stats) == {"today", "7 days", "all"}
    assert accounts.is_admin(1) and not accounts.is_admin(uid) and not accounts.is_admin(None)
