"""Variant orders on both databases: N rows and N spend rows in one transaction, once per
request key (also under concurrent starts), all or nothing, a failed row refunded its share
once, and the order found again by its lead's key."""

from __future__ import annotations

import asyncio

import pytest

from storage.errors import InFlightLimitError, InsufficientBalanceError, InvalidFieldError


async def _user(repo, user_id=1, bonus=50):
    await repo.register_user(user_id, username=None, first_name="A", last_name=None,
                             language="en", signup_bonus=bonus)


def _start(repo, key="10:20", count=3, cost=8, **kw):
    return repo.start_variants(user_id=1, chat_id=1, model_key="seedream_45_t2i", kind="image",
                               cost=cost, count=count, options={"aspect_ratio": "1:1"},
                               request_key=key, prompt="a fox", **kw)


async def test_an_order_is_charged_once_for_all_its_rows(repo):
    await _user(repo)
    started, rows = await _start(repo)
    assert started.created and started.generation.id == rows[0].id
    assert [r.request_key for r in rows] == ["10:20", "10:20#v2", "10:20#v3"]
    assert [r.options["_variant"] for r in rows] == [1, 2, 3]
    assert {r.options["_variants"] for r in rows} == {3} and {r.cost for r in rows} == {8}
    again, same = await _start(repo)  # a repeated tap: the same rows, nothing charged
    assert not again.created and [r.id for r in same] == [r.id for r in rows]
    assert (await repo.get_user(1)).balance == 50 - 24
    entries = await repo.ledger(1)
    assert sorted((e.reason, e.delta, e.generation_id) for e in entries if e.reason == "spend") == \
        sorted(("spend", -8, r.id) for r in rows)
    assert [r.id for r in await repo.variant_rows(1, "10:20", 3)] == [r.id for r in rows]
    assert await repo.ledger_check() == []


async def test_concurrent_starts_of_one_order_make_one_order(repo):
    await _user(repo, bonus=100)
    results = await asyncio.gather(*(_start(repo) for _ in range(4)))
    assert sum(1 for started, _ in results if started.created) == 1
    assert (await repo.get_user(1)).balance == 100 - 24
    assert await repo.count_library(1, statuses=("queued",)) == 3


async def test_an_order_the_balance_does_not_cover_writes_nothing(repo):
    await _user(repo, bonus=20)
    with pytest.raises(InsufficientBalanceError):
        await _start(repo)  # 24 > 20: no row, no spend
    assert await repo.variant_rows(1, "10:20", 3) == []
    assert (await repo.get_user(1)).balance == 20 and await repo.ledger_check() == []


async def test_a_failed_row_is_refunded_its_share_once(repo):
    await _user(repo)
    _, rows = await _start(repo)
    assert await repo.fail_generation(rows[1].id, error="KIE failed")
    assert not await repo.fail_generation(rows[1].id, error="KIE failed again")
    assert (await repo.get_user(1)).balance == 50 - 24 + 8
    refunds = [e for e in await repo.ledger(1) if e.reason == "refund"]
    assert [(e.delta, e.generation_id) for e in refunds] == [(8, rows[1].id)]


async def test_an_order_counts_once_against_the_in_flight_limit(repo):
    await _user(repo, bonus=200)
    await _start(repo, key="a", count=4, max_in_flight=1)  # one request, four rows
    with pytest.raises(InFlightLimitError):
        await _start(repo, key="b", count=2, max_in_flight=1)


@pytest.mark.parametrize(("kw", "problem"), [({"count": 1}, "count"), ({"count": 5}, "count"),
                                             ({"key": "x#v2"}, "#v")])
async def test_bad_orders_are_refused(repo, kw, problem):
    await _user(repo)
    with pytest.raises(InvalidFieldError, match=problem):
        await _start(repo, **kw)
