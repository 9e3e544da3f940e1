"""The prompt helper's keyed charge and refund (SQLite and Postgres): once per key under
replays and concurrent presses, refunded once, never below zero, balance == SUM(ledger)."""

from __future__ import annotations

import asyncio

import pytest

from storage.errors import InsufficientBalanceError


async def _user(repo, user_id: int, bonus: int = 10) -> None:
    await repo.register_user(user_id, username=None, first_name="Ann", last_name=None,
                             language="en", signup_bonus=bonus)


async def _reasons(repo, user_id: int) -> list[tuple[str, int]]:
    return [(e.reason, e.delta) for e in reversed(await repo.ledger(user_id, limit=50))]


async def test_a_key_is_charged_once_and_refunded_once(repo):
    await _user(repo, 11)
    assert await repo.assist_charge(11, 2, key="11:1:500:abc") is True
    assert await repo.assist_charge(11, 2, key="11:1:500:abc") is False
    assert (await repo.get_user(11)).balance == 8
    assert await repo.assist_refund(11, key="11:1:500:abc") == 2
    assert await repo.assist_refund(11, key="11:1:500:abc") == 0
    assert (await repo.get_user(11)).balance == 10
    # another press is another charge
    assert await repo.assist_charge(11, 2, key="11:1:500:def") is True
    assert await _reasons(repo, 11) == [("signup_bonus", 10), ("assist", -2),
                                        ("assist_refund", 2), ("assist", -2)]
    assert await repo.ledger_check() == []


async def test_refund_without_a_charge_or_of_someone_else_is_nothing(repo):
    await _user(repo, 12)
    await _user(repo, 13)
    assert await repo.assist_refund(12, key="never") == 0
    await repo.assist_charge(12, 3, key="k12")
    assert await repo.assist_refund(13, key="k12") == 0
    assert (await repo.get_user(13)).balance == 10
    assert await repo.ledger_check() == []


async def test_insufficient_balance_leaves_no_row(repo):
    await _user(repo, 14, bonus=1)
    with pytest.raises(InsufficientBalanceError):
        await repo.assist_charge(14, 2, key="k14")
    assert await _reasons(repo, 14) == [("signup_bonus", 1)]
    # the key is still free: after a top-up the same press may charge
    await repo.admin_adjust(14, 5, admin_id=1)
    assert await repo.assist_charge(14, 2, key="k14") is True
    assert await repo.ledger_check() == []


async def test_concurrent_presses_charge_once_and_refunds_once(repo):
    await _user(repo, 15)
    charged = await asyncio.gather(*(repo.assist_charge(15, 2, key="k15") for _ in range(3)))
    assert sorted(charged) == [False, False, True]
    refunded = await asyncio.gather(*(repo.assist_refund(15, key="k15") for _ in range(3)))
    assert sorted(refunded) == [0, 0, 2]
    assert (await repo.get_user(15)).balance == 10
    assert await repo.ledger_check() == []
