"""Races that must resolve in the database: parallel spends, duplicate purchases, refunds."""

from __future__ import annotations

import asyncio

import pytest

from storage.errors import InsufficientBalanceError

COST = 3


async def _user(repo, balance):
    await repo.register_user(
        1, username=None, first_name="U", last_name=None, language="en", signup_bonus=balance
    )


async def test_parallel_spends_never_overdraw(repo):
    await _user(repo, 37 * COST)

    async def spend(i):
        try:
            await repo.start_generation(
                user_id=1, chat_id=1, model_key="m", kind="image", cost=COST, options={},
                request_key=f"r{i}",
            )
            return True
        except InsufficientBalanceError:
            return False

    outcomes = await asyncio.gather(*(spend(i) for i in range(100)))
    assert outcomes.count(True) == 37
    assert (await repo.get_user(1)).balance == 0
    spends = [e for e in await repo.ledger(1, limit=1000) if e.reason == "spend"]
    assert len(spends) == 37
    assert await repo.count_in_flight(1) == 37
    assert await repo.ledger_check() == []


async def test_parallel_double_taps_charge_once(repo):
    await _user(repo, 100)
    results = await asyncio.gather(*(
        repo.start_generation(
            user_id=1, chat_id=1, model_key="m", kind="image", cost=COST, options={}, request_key="same"
        )
        for _ in range(20)
    ))
    assert sum(r.created for r in results) == 1
    assert len({r.generation.id for r in results}) == 1
    assert (await repo.get_user(1)).balance == 100 - COST


async def test_parallel_duplicate_purchase_credits_once(repo):
    await _user(repo, 0)
    outcomes = await asyncio.gather(*(
        repo.credit_purchase(user_id=1, charge_id="charge-1", stars=50, credits=60, payload="x")
        for _ in range(20)
    ))
    assert outcomes.count(True) == 1
    assert (await repo.get_user(1)).balance == 60
    assert [e.reason for e in await repo.ledger(1, limit=100)] == ["purchase"]


async def test_parallel_fail_refunds_once(repo):
    await _user(repo, 10)
    gen = (await repo.start_generation(
        user_id=1, chat_id=1, model_key="m", kind="image", cost=10, options={}, request_key="k"
    )).generation
    outcomes = await asyncio.gather(*(repo.fail_generation(gen.id, error=f"e{i}") for i in range(10)))
    assert outcomes.count(True) == 1
    refunds = [e for e in await repo.ledger(1, limit=100) if e.reason == "refund"]
    assert len(refunds) == 1 and (await repo.get_user(1)).balance == 10


async def test_parallel_reverse_purchase_debits_once(repo):
    await _user(repo, 0)
    await repo.credit_purchase(user_id=1, charge_id="c", stars=5, credits=40, payload=None)
    outcomes = await asyncio.gather(
        *(repo.reverse_purchase("c") for _ in range(10)), return_exceptions=True
    )
    assert sum(1 for o in outcomes if not isinstance(o, Exception)) == 1
    assert all(type(o).__name__ == "DuplicateError" for o in outcomes if isinstance(o, Exception))
    assert (await repo.get_user(1)).balance == 0 and await repo.ledger_check() == []


@pytest.mark.parametrize("n", [10])
async def test_parallel_register_pays_bonus_once(repo, n):
    results = await asyncio.gather(*(
        repo.register_user(5, username="x", first_name=None, last_name=None, language=None, signup_bonus=50)
        for _ in range(n)
    ))
    assert sum(created for _, created in results) == 1
    assert (await repo.get_user(5)).balance == 50


async def test_reads_do_not_wait_for_a_held_write_lock(repo, engine):
    """On SQLite a writer holds the database's one write lock for its whole transaction; reads
    (and a registration with nothing to write) must go on meanwhile instead of queueing behind
    it (they used to open with BEGIN IMMEDIATE and waited out the busy timeout)."""
    import sqlalchemy as sa

    from storage.schema import users

    await _user(repo, 10)
    names = dict(username=None, first_name="U", last_name=None, language="en", signup_bonus=10)
    async with engine.begin() as writer:
        await writer.execute(sa.update(users).where(users.c.id == 1).values(balance=users.c.balance))
        assert (await repo.get_user(1)).balance == 10
        assert await repo.count_in_flight(1) == 0
        assert await repo.ledger(1) != []
        assert (await repo.stats())["credits_bonus"] == 10  # a snapshot read: no lock either
        user, created = await repo.register_user(1, **names)
        assert (user.id, created) == (1, False)


async def test_a_burst_of_concurrent_transactions_on_a_small_pool_gets_no_pool_error(backend, migrated_db_url):
    """More concurrent transactions than connections wait for one instead of failing (the
    default 30 s pool timeout is replaced by DB_POOL_TIMEOUT; a small pool shows the queueing)."""
    from migrations.runner import upgrade
    from storage.db import create_engine
    from storage.repository import Repository

    kwargs = {} if backend == "sqlite" else dict(pool_size=2, max_overflow=1)
    engine = create_engine(migrated_db_url, **kwargs)
    try:
        if backend == "sqlite":
            await upgrade(engine)
        repo = Repository(engine)
        await asyncio.gather(*(
            repo.register_user(i, username=None, first_name="U", last_name=None, language="en",
                               signup_bonus=1)
            for i in range(1, 201)
        ))
        results = await asyncio.gather(*(repo.get_user(i) for i in range(1, 201)))
        assert [u.balance for u in results] == [1] * 200
        assert await repo.ledger_check() == []
    finally:
        await engine.dispose()
