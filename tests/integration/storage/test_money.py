"""Users and money on both databases: balances, ledger rows, exactly-once effects."""

from __future__ import annotations

import pytest

from storage.errors import DuplicateError, InsufficientBalanceError, UnknownUserError


async def _user(repo, user_id=1, bonus=50):
    user, created = await repo.register_user(
        user_id, username="Alice", first_name="A", last_name=None, language="en", signup_bonus=bonus
    )
    return user


async def test_register_pays_bonus_once_and_refreshes_names(repo):
    user, created = await repo.register_user(
        1, username="@Alice", first_name="A", last_name="L", language="ru", signup_bonus=50
    )
    assert created and user.balance == 50 and user.username == "Alice" and user.language == "ru"
    assert user.created_at.tzinfo is not None
    again, created2 = await repo.register_user(
        1, username="alice2", first_name="B", last_name=None, language="en", signup_bonus=50
    )
    assert not created2
    assert again.balance == 50 and again.username == "alice2" and again.first_name == "B"
    assert again.language == "ru"  # a chosen language survives /start
    assert again.last_seen_at >= user.last_seen_at
    entries = await repo.ledger(1)
    assert [(e.reason, e.delta) for e in entries] == [("signup_bonus", 50)]
    assert await repo.ledger_check() == []


async def test_find_user_by_username_is_case_insensitive(repo):
    await _user(repo)
    assert (await repo.find_user_by_username("@ALICE")).id == 1
    assert await repo.find_user_by_username("bob") is None
    assert await repo.get_user(999) is None


async def test_set_language_and_blocked(repo):
    await _user(repo)
    await repo.set_language(1, "en")
    await repo.set_blocked(1, True)
    user = await repo.get_user(1)
    assert user.language == "en" and user.blocked is True
    with pytest.raises(UnknownUserError):
        await repo.set_blocked(2, True)


async def test_any_update_from_the_user_clears_blocked(repo):
    await _user(repo)
    await repo.set_blocked(1, True)
    user, created = await repo.register_user(
        1, username="Alice", first_name="A", last_name=None, language="en", signup_bonus=50
    )
    assert not created and user.blocked is False
    assert (await repo.get_user(1)).blocked is False


async def test_start_payload_is_kept_from_the_first_deep_link(repo):
    user, _ = await repo.register_user(
        1, username=None, first_name="A", last_name=None, language="en", signup_bonus=0,
        start_payload="ref_42",
    )
    assert user.start_payload == "ref_42"
    again, _ = await repo.register_user(
        1, username=None, first_name="A", last_name=None, language="en", signup_bonus=0,
        start_payload="ref_99",
    )
    assert again.start_payload == "ref_42"  # the first one wins
    plain, _ = await repo.register_user(
        1, username=None, first_name="A", last_name=None, language="en", signup_bonus=0,
    )
    assert plain.start_payload == "ref_42"  # an update without a payload keeps it
    # an existing user without one gets the first payload seen later
    await _user(repo, user_id=2)
    later, _ = await repo.register_user(
        2, username=None, first_name="B", last_name=None, language="en", signup_bonus=0,
        start_payload="  promo  ",
    )
    assert later.start_payload == "promo"


async def test_full_purchase_refund_records_the_whole_pack(repo):
    await _user(repo, bonus=0)
    await repo.credit_purchase(user_id=1, charge_id="ch9", stars=50, credits=55, payload="p")
    reversed_ = await repo.reverse_purchase("ch9")
    assert reversed_.refunded_credits == 55
    assert (await repo.ledger(1, limit=1))[0].delta == -55
    assert await repo.ledger_check() == []


async def test_purchase_once_per_charge_and_reverse(repo):
    await _user(repo, bonus=0)
    assert await repo.credit_purchase(user_id=1, charge_id="ch1", stars=100, credits=120, payload="p")
    assert not await repo.credit_purchase(user_id=1, charge_id="ch1", stars=100, credits=120, payload="p")
    assert (await repo.get_user(1)).balance == 120
    payment = await repo.get_payment("ch1")
    assert payment.credits == 120 and payment.refunded_at is None
    assert [p.telegram_payment_charge_id for p in await repo.payments_for(1)] == ["ch1"]

    await repo.start_generation(
        user_id=1, chat_id=1, model_key="m", kind="image", cost=100, options={}, request_key="k"
    )
    reversed_ = await repo.reverse_purchase("ch1", admin_id=7)
    assert reversed_.refunded_at is not None
    assert reversed_.refunded_credits == 20  # what was debited, not the pack's 120
    assert (await repo.get_payment("ch1")).refunded_credits == 20
    # only the 20 still unspent can be taken back; the balance never goes negative
    assert (await repo.get_user(1)).balance == 0
    entry = (await repo.ledger(1, limit=1))[0]
    assert (entry.reason, entry.delta, entry.admin_id) == ("purchase_refund", -20, 7)
    with pytest.raises(DuplicateError):
        await repo.reverse_purchase("ch1")
    assert await repo.reverse_purchase("nope") is None
    assert await repo.ledger_check() == []


async def test_admin_adjust_and_set(repo):
    await _user(repo, bonus=10)
    assert await repo.admin_adjust(1, 5, admin_id=9, note="gift") == 15
    assert await repo.admin_adjust(1, -15, admin_id=9, note="take") == 0
    with pytest.raises(InsufficientBalanceError) as info:
        await repo.admin_adjust(1, -1, admin_id=9, note="too much")
    assert (info.value.balance, info.value.cost) == (0, 1)
    assert await repo.admin_set(1, 42, admin_id=9, note="set") == 42
    assert await repo.admin_set(1, 42, admin_id=9, note="same") == 42
    assert await repo.admin_set(1, 0, admin_id=9, note="zero") == 0
    reasons = [e.reason for e in await repo.ledger(1, limit=100)]
    assert reasons.count("admin_adjust") == 4  # the no-op set wrote nothing
    assert await repo.ledger_check() == []
    with pytest.raises(UnknownUserError):
        await repo.admin_adjust(2, 5, admin_id=9, note=None)


async def test_ledger_check_reports_a_tampered_balance(repo, engine):
    import sqlalchemy as sa

    from storage.schema import users

    await _user(repo, bonus=50)
    async with engine.begin() as conn:
        await conn.execute(sa.update(users).values(balance=49))
    assert await repo.ledger_check() == [(1, 49, 50)]


async def test_stats_counts_models_and_credits(repo):
    await _user(repo, bonus=50)
    await repo.credit_purchase(user_id=1, charge_id="c", stars=10, credits=30, payload=None)
    a = (await repo.start_generation(
        user_id=1, chat_id=1, model_key="flux", kind="image", cost=12, options={}, request_key="a"
    )).generation
    await repo.start_generation(
        user_id=1, chat_id=1, model_key="kling", kind="video", cost=25, options={}, request_key="b"
    )
    await repo.fail_generation(a.id, error="boom")
    stats = await repo.stats(None)
    assert stats["generations"] == {("flux", "failed"): 1, ("kling", "queued"): 1}
    assert (stats["credits_sold"], stats["credits_spent"], stats["credits_refunded"]) == (30, 37, 12)
    assert stats["stars"] == 10 and stats["payments"] == 1 and stats["credits_bonus"] == 50
    from datetime import UTC, datetime, timedelta

    future = await repo.stats(datetime.now(UTC) + timedelta(days=1))
    assert future["generations"] == {} and future["credits_sold"] == 0


async def _ledger_rows(engine):
    import sqlalchemy as sa

    from storage.schema import credit_ledger

    async with engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(credit_ledger))


@pytest.mark.parametrize("admin_id", [None, 0, -5, "9", 1.5, True])
async def test_admin_change_without_a_valid_admin_id_writes_nothing(repo, engine, admin_id):
    from storage.errors import InvalidFieldError

    await _user(repo, bonus=10)
    before = await _ledger_rows(engine)
    with pytest.raises(InvalidFieldError, match="admin_id"):
        await repo.admin_adjust(1, 5, admin_id=admin_id, note="gift")
    with pytest.raises(InvalidFieldError, match="admin_id"):
        await repo.admin_set(1, 99, admin_id=admin_id)
    with pytest.raises(TypeError):
        await repo.admin_adjust(1, 5, note="no admin at all")  # admin_id has no default
    assert await _ledger_rows(engine) == before
    assert (await repo.get_user(1)).balance == 10


async def test_admin_note_is_optional_and_stored(repo):
    from storage.errors import InvalidFieldError

    await _user(repo, bonus=10)
    await repo.admin_adjust(1, 5, admin_id=9)
    await repo.admin_set(1, 20, admin_id=9, note="  reset after support chat  ")
    await repo.admin_adjust(1, 1, admin_id=9, note="   ")
    with pytest.raises(InvalidFieldError, match="note"):
        await repo.admin_adjust(1, 1, admin_id=9, note="x" * 501)
    rows = [(e.delta, e.admin_id, e.note) for e in await repo.ledger(1, limit=10)]
    assert rows[:3] == [(1, 9, None), (5, 9, "reset after support chat"), (5, 9, None)]
    assert (await repo.get_user(1)).balance == 21


async def test_a_403_older_than_the_users_last_message_does_not_mark_them_blocked(repo):
    from datetime import UTC, datetime, timedelta

    seen = datetime(2030, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    await repo.register_user(7, username=None, first_name="A", last_name=None, language="en",
                             signup_bonus=0, now=seen)
    # The send began before the user's latest message: that message unblocked them.
    assert not await repo.mark_unreachable(7, since=seen - timedelta(microseconds=1))
    assert (await repo.get_user(7)).blocked is False
    # The send began after it: the 403 is news.
    assert await repo.mark_unreachable(7, since=seen + timedelta(milliseconds=1))
    assert (await repo.get_user(7)).blocked is True
    # Writing again clears it, as before.
    await repo.register_user(7, username=None, first_name="A", last_name=None, language="en",
                             signup_bonus=0, now=seen + timedelta(seconds=5))
    assert (await repo.get_user(7)).blocked is False


async def test_with_a_generation_undelivered_every_update_records_last_seen(repo):
    """The race mark_unreachable exists for, now that register_user skips most writes: the user
    writes at t0, a send for their generation begins at t1, they write again at t2 (seconds
    later), the send's 403 arrives. last_seen_at must say t2, so the 403 is not taken as news."""
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
    names = dict(username=None, first_name="A", last_name=None, language="en", signup_bonus=5)
    await repo.register_user(8, **names, now=t0)
    await repo.register_user(8, **names, now=t0 + timedelta(seconds=1))
    assert (await repo.get_user(8)).last_seen_at == t0  # nothing undelivered: not refreshed
    g = (await repo.start_generation(user_id=8, chat_id=8, model_key="m", kind="image", cost=1,
                                     options={}, request_key="k")).generation
    t1, t2 = t0 + timedelta(seconds=20), t0 + timedelta(seconds=21)
    await repo.register_user(8, **names, now=t2)
    assert (await repo.get_user(8)).last_seen_at == t2
    assert not await repo.mark_unreachable(8, since=t1)
    assert (await repo.get_user(8)).blocked is False
    # Once delivered, updates stop writing again.
    await repo.fail_generation(g.id, error="x")
    assert await repo.mark_delivered(g.id)
    await repo.register_user(8, **names, now=t2 + timedelta(seconds=1))
    assert (await repo.get_user(8)).last_seen_at == t2


async def test_register_writes_only_when_something_changed(repo, engine):
    from datetime import UTC, datetime, timedelta

    from storage.repository._money import LAST_SEEN_RESOLUTION as R
    from tests.integration.storage.statements import statements_sent

    writes: list[str] = []

    def record(statement: str) -> None:
        words = statement.lstrip().upper()
        if words.startswith(("INSERT", "UPDATE")):
            writes.append(words.split()[0])
        elif words.startswith("WITH") and "INSERT INTO" in words:
            writes.append("INSERT")  # Postgres: a plain signup in one statement

    t0 = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
    names = dict(username="ann", first_name="Ann", last_name=None, language="en", signup_bonus=5)

    async def register(at, **changes):
        writes.clear()
        async with statements_sent(engine, record):
            user, created = await repo.register_user(9, **{**names, **changes}, now=t0 + at)
        return user, created, list(writes)

    user, created, w = await register(timedelta(0))
    assert created and user.balance == 5 and "INSERT" in w
    user, created, w = await register(timedelta(seconds=10))
    assert (created, w, user.balance, user.last_seen_at) == (False, [], 5, t0)
    _, _, w = await register(timedelta(seconds=11), first_name="Anna")
    assert w == ["UPDATE"]
    names["first_name"] = "Anna"
    _, _, w = await register(timedelta(seconds=12), start_payload="promo")
    assert w == ["UPDATE"] and (await repo.get_user(9)).start_payload == "promo"
    _, _, w = await register(timedelta(seconds=13), start_payload="other")  # only the first is kept
    assert w == []
    await repo.set_blocked(9, True)
    user, _, w = await register(timedelta(seconds=14))
    assert w == ["UPDATE"] and user.blocked is False
    user, _, w = await register(timedelta(seconds=14) + R)
    assert w == ["UPDATE"] and user.last_seen_at == t0 + timedelta(seconds=14) + R
    user, _, w = await register(timedelta(seconds=15) + R)
    assert w == [] and (await repo.get_user(9)).start_payload == "promo"
    assert await repo.ledger_check() == []


async def test_balance_and_ledger_is_both_reads_at_once(repo):
    assert await repo.balance_and_ledger(1) == (0, [])  # unknown user
    await _user(repo, bonus=10)
    await repo.admin_adjust(1, 5, admin_id=9, note="gift")
    await repo.admin_adjust(1, -3, admin_id=9, note="take")
    balance, entries = await repo.balance_and_ledger(1, limit=2)
    assert balance == 12 == (await repo.get_user(1)).balance
    assert entries == await repo.ledger(1, limit=2)
    assert [e.delta for e in entries] == [-3, 5]
