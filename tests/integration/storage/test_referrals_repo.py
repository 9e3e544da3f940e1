"""Referrals, promo codes, the signup-bonus guard and the daily free allowance in storage
(SQLite and Postgres): every bonus once under replays and races, promo limits held by the
database under many concurrent redemptions, the ledger always equal to the balances."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from storage.errors import InsufficientBalanceError
from storage.repository._referrals import (
    PromoError,
    ReferralTerms,
    SignupRules,
    inviter_of,
    promo_of,
    referral_code,
)
from storage.schema import credit_ledger, promo_codes

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TERMS = ReferralTerms(bonus=30, share_percent=10)


async def _user(repo, user_id: int, *, payload: str | None = None, bonus: int = 0,
                rules: SignupRules | None = None, now: datetime = NOW):
    user, created = await repo.register_user(
        user_id, username=f"u{user_id}", first_name="A", last_name=None, language="en",
        signup_bonus=bonus, start_payload=payload, now=now, signup_rules=rules)
    return user, created


async def _buy(repo, user_id: int, charge: str, credits: int = 100) -> bool:
    return await repo.credit_purchase(user_id=user_id, charge_id=charge, stars=credits,
                                      credits=credits, payload="pack", referral=TERMS)


async def _balance(repo, user_id: int) -> int:
    return (await repo.get_user(user_id)).balance


def test_codes_round_trip():
    for uid in (1, 35, 36, 123456789, 2**62):
        assert inviter_of("ref_" + referral_code(uid)) == uid
    assert inviter_of("ref_") is None and inviter_of("ref_!!") is None
    assert inviter_of("promo_X") is None and inviter_of(None) is None
    assert promo_of("promo_spring-26") == "SPRING-26"
    assert promo_of("promo_") is None and promo_of("ref_abc") is None


async def test_friend_is_tied_only_at_registration_and_never_to_self(repo):
    await _user(repo, 1)
    await _user(repo, 2, payload="ref_" + referral_code(1))
    assert await repo.inviter_for(2) == 1
    # An existing user following a link later is nobody's friend.
    await _user(repo, 3)
    await _user(repo, 3, payload="ref_" + referral_code(1))
    assert await repo.inviter_for(3) is None
    # Self, unknown inviters and junk are ignored; the user is still registered.
    _, created = await _user(repo, 4, payload="ref_" + referral_code(4))
    assert created and await repo.inviter_for(4) is None
    _, created = await _user(repo, 5, payload="ref_" + referral_code(999))
    assert created and await repo.inviter_for(5) is None
    assert await repo.referral_stats(1) == (await repo.referral_stats(1)).__class__(1, 0, 0)


async def test_bonuses_once_per_friend_share_per_purchase_under_replays_and_races(repo):
    await _user(repo, 10)
    await _user(repo, 11, payload="ref_" + referral_code(10))
    results = await asyncio.gather(*(_buy(repo, 11, "ch-1") for _ in range(6)))
    assert sorted(results) == [False] * 5 + [True]
    assert await _balance(repo, 11) == 100 + 30
    assert await _balance(repo, 10) == 30 + 10
    # A second purchase: the share only.
    assert await _buy(repo, 11, "ch-2", credits=250)
    assert not await _buy(repo, 11, "ch-2", credits=250)
    assert await _balance(repo, 11) == 100 + 30 + 250
    assert await _balance(repo, 10) == 30 + 10 + 25
    stats = await repo.referral_stats(10)
    assert (stats.invited, stats.paid, stats.earned) == (1, 1, 65)
    assert await repo.ledger_check() == []


async def test_no_bonus_without_a_referral_and_with_terms_off(repo):
    await _user(repo, 20)
    assert await _buy(repo, 20, "solo")
    assert await _balance(repo, 20) == 100
    await _user(repo, 21, payload="ref_" + referral_code(20))
    assert await repo.credit_purchase(user_id=21, charge_id="off", stars=100, credits=100,
                                      payload="pack", referral=ReferralTerms())
    assert (await _balance(repo, 20), await _balance(repo, 21)) == (100, 100)
    # The first purchase was made with the bonus off: turning it on later pays nothing.
    assert await _buy(repo, 21, "later")
    assert await _balance(repo, 20) == 110 and await _balance(repo, 21) == 200
    assert (await repo.referral_stats(20)).paid == 1


async def test_refund_takes_back_share_and_bonuses_never_below_zero(repo):
    await _user(repo, 30)
    await _user(repo, 31, payload="ref_" + referral_code(30))
    assert await _buy(repo, 31, "first")
    assert await _buy(repo, 31, "second", credits=200)
    assert await _balance(repo, 30) == 30 + 10 + 20
    # The inviter spends most of it; the refund of the second purchase takes its share back.
    await repo.admin_adjust(30, -55, admin_id=1)
    refunded = await repo.reverse_purchase("second", admin_id=1)
    assert refunded.refunded_credits == 200
    assert await _balance(repo, 30) == 5 - 5  # share 20, only 5 left: 5 taken
    # Refunding the first purchase takes back both bonuses, bounded by what is left.
    await repo.admin_adjust(30, +7, admin_id=1)
    await repo.reverse_purchase("first", admin_id=1)
    assert await _balance(repo, 30) == 0
    assert await _balance(repo, 31) == 0
    assert await repo.ledger_check() == []
    async with repo.engine.connect() as conn:
        keys = set((await conn.execute(
            sa.select(credit_ledger.c.idempotency_key).where(
                credit_ledger.c.idempotency_key.like("ref:%")))).scalars())
    assert {"ref:ibr:31", "ref:fbr:31", "ref:sr:first", "ref:sr:second"} <= keys


async def test_signup_bonus_guard_invited_only_and_daily_cap(repo):
    await _user(repo, 40)
    rules = SignupRules(invited_only=True)
    user, _ = await _user(repo, 41, bonus=50, rules=rules)
    assert user.balance == 0
    user, _ = await _user(repo, 42, bonus=50, rules=rules, payload="ref_" + referral_code(40))
    assert user.balance == 50
    await repo.create_promo("WELCOME", credits=5, max_uses=10, expires_at=None, admin_id=1)
    user, _ = await _user(repo, 43, bonus=50, rules=rules, payload="promo_welcome")
    assert user.balance == 50
    user, _ = await _user(repo, 44, bonus=50, rules=rules, payload="promo_nosuch")
    assert user.balance == 0
    # A daily cap of 3, raced by 8 newcomers: exactly 3 bonuses today, more tomorrow.
    capped = SignupRules(daily_cap=3)
    users = await asyncio.gather(*(_user(repo, 100 + i, bonus=50, rules=capped)
                                   for i in range(8)))
    assert sorted(u.balance for u, _ in users) == [0] * 5 + [50] * 3
    user, _ = await _user(repo, 200, bonus=50, rules=capped, now=NOW + timedelta(days=1))
    assert user.balance == 50
    assert await repo.ledger_check() == []


async def test_promo_once_per_user_and_reasons(repo):
    for uid in (50, 51):
        await _user(repo, uid)
    assert await repo.create_promo("spring", credits=25, max_uses=5, expires_at=None, admin_id=1)
    assert not await repo.create_promo("SPRING", credits=99, max_uses=5, expires_at=None,
                                       admin_id=1)
    assert await repo.redeem_promo("Spring", 50) == 25
    with pytest.raises(PromoError) as info:
        await repo.redeem_promo("SPRING", 50)
    assert info.value.reason == "already"
    with pytest.raises(PromoError) as info:
        await repo.redeem_promo("NOPE", 50)
    assert info.value.reason == "unknown"
    with pytest.raises(PromoError) as info:
        await repo.redeem_promo("bad code!", 50)
    assert info.value.reason == "unknown"
    await repo.create_promo("OLD", credits=5, max_uses=5, expires_at=NOW - timedelta(days=1),
                            admin_id=1)
    with pytest.raises(PromoError) as info:
        await repo.redeem_promo("OLD", 50, now=NOW)
    assert info.value.reason == "expired"
    assert await repo.set_promo_active("SPRING", False)
    with pytest.raises(PromoError) as info:
        await repo.redeem_promo("SPRING", 51)
    assert info.value.reason == "off"
    assert not await repo.set_promo_active("NOPE", False)
    [old, spring] = sorted(await repo.list_promos(), key=lambda p: p.code)
    assert (spring.used, spring.active, old.used) == (1, False, 0)
    assert await _balance(repo, 50) == 25 and await _balance(repo, 51) == 0
    assert await repo.ledger_check() == []


async def test_concurrent_redemptions_never_exceed_the_uses(repo):
    users = list(range(300, 330))
    for uid in users:
        await _user(repo, uid)
    await repo.create_promo("RUSH", credits=10, max_uses=7, expires_at=None, admin_id=1)
    # 30 users, each tapping three times at once.
    outcomes = await asyncio.gather(*(repo.redeem_promo("RUSH", uid) for uid in users for _ in range(3)),
                                    return_exceptions=True)
    assert sum(1 for o in outcomes if o == 10) == 7
    assert all(isinstance(o, PromoError) for o in outcomes if o != 10)
    assert {o.reason for o in outcomes if isinstance(o, PromoError)} <= {"already", "used_up"}
    balances = [await _balance(repo, uid) for uid in users]
    assert sorted(balances) == [0] * 23 + [10] * 7
    async with repo.engine.connect() as conn:
        used = await conn.scalar(sa.select(promo_codes.c.used).where(promo_codes.c.code == "RUSH"))
    assert used == 7
    assert await repo.ledger_check() == []


async def _start(repo, user_id: int, key: str, *, cost: int = 5, free: int = 1,
                 now: datetime = NOW):
    return await repo.start_generation(
        user_id=user_id, chat_id=user_id, model_key="cheap", kind="image", cost=cost,
        options={}, request_key=key, daily_free=free, now=now)


async def test_daily_free_once_a_day_under_races_and_returned_on_failure(repo):
    await _user(repo, 60)
    await repo.admin_adjust(60, 12, admin_id=1)
    # The same request tapped three times and two other requests, all at once: one is free.
    starts = await asyncio.gather(*(_start(repo, 60, "a") for _ in range(3)),
                                  _start(repo, 60, "b"), _start(repo, 60, "c"))
    rows = {s.generation.id: s.generation.cost for s in starts}
    assert sorted(rows.values()) == [0, 5, 5]
    assert await _balance(repo, 60) == 2
    assert await repo.daily_free_left(60, 1, now=NOW) == 0
    # A failed free generation gives the use back (and refunds nothing).
    free_id = next(g for g, cost in rows.items() if cost == 0)
    assert await repo.fail_generation(free_id, error="boom")
    assert await repo.daily_free_left(60, 1, now=NOW) == 1
    assert (await _start(repo, 60, "d")).generation.cost == 0
    with pytest.raises(InsufficientBalanceError):
        await _start(repo, 60, "e")
    # Tomorrow is another day.
    assert (await _start(repo, 60, "f", now=NOW + timedelta(days=1))).generation.cost == 0
    assert await repo.ledger_check() == []


async def test_daily_free_off_or_free_anyway_takes_nothing(repo):
    await _user(repo, 70)
    await repo.admin_adjust(70, 10, admin_id=1)
    assert (await _start(repo, 70, "a", free=0)).generation.cost == 5
    assert (await _start(repo, 70, "b", cost=0)).generation.cost == 0  # a self-test
    assert await repo.daily_free_left(70, 1, now=NOW) == 1
    assert await repo.daily_free_left(70, 0, now=NOW) == 0


async def test_admin_stats_count_referral_and_promo_credits_as_gifts(repo):
    await _user(repo, 80, bonus=50)
    await _user(repo, 81, bonus=50, payload="ref_" + referral_code(80))
    await _buy(repo, 81, "gift-ch")
    await repo.create_promo("GIFT", credits=15, max_uses=5, expires_at=None, admin_id=1)
    await repo.redeem_promo("GIFT", 80)
    stats = await repo.stats()
    assert stats["credits_bonus"] == 50 + 50 + 30 + 30 + 10 + 15
    assert stats["credits_sold"] == 100
