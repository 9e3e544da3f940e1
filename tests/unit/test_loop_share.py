"""LoopShare (bot/loop_share.py): background work runs a bounded share of each loop turn and
lets HTTP acknowledgements go first. Turns are counted, not timed: a clock the test moves
stands in for time.perf_counter, so a busy machine cannot change the outcome."""

from __future__ import annotations

import asyncio

import pytest

from bot import loop_share
from bot.loop_share import LoopShare


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(loop_share.time, "perf_counter", fake)
    return fake


async def turns_until(condition) -> int:
    """Loop turns (call_soon rounds) until `condition()` holds."""
    turns = 0
    while not condition():
        await asyncio.sleep(0)
        turns += 1
        assert turns < 1000, "never happened"
    return turns


async def test_background_work_past_the_budget_waits_for_the_next_turn(clock: Clock):
    share = LoopShare(budget_s=0.004)
    ran: list[str] = []

    async def worker(name: str, cost_s: float) -> None:
        await share.turn()
        clock.now += cost_s  # its chunk of work
        ran.append(name)

    # The first turn after a quiet spell starts a budget; a, b, c fit in 4 ms, d does not.
    tasks = [asyncio.create_task(worker(n, 0.0015)) for n in "abcd"]
    await turns_until(lambda: len(ran) >= 3)
    assert ran == ["a", "b", "c"]
    await asyncio.gather(*tasks)
    assert ran == ["a", "b", "c", "d"]  # in the next turn, after the loop read its sockets


async def test_work_within_the_budget_does_not_yield(clock: Clock):
    share = LoopShare(budget_s=0.004)
    await share.turn()  # starts this turn's budget (one deferral after a quiet spell)
    for _ in range(3):
        clock.now += 0.001
        other = asyncio.Event()
        asyncio.get_running_loop().call_soon(other.set)  # runs only if we give up the loop
        await share.turn()  # 1, 2, 3 ms: within the budget, returns without a turn
        assert not other.is_set()
        await asyncio.sleep(0)
    clock.now += 0.002  # 5 ms: over
    done = asyncio.create_task(share.turn())
    await asyncio.sleep(0)
    assert not done.done()  # deferred to a later turn
    await done


async def test_rows_wait_while_acknowledgements_are_in_flight(clock: Clock):
    share = LoopShare(budget_s=1.0, ack_wait_s=60)
    started = asyncio.Event()

    async def row() -> None:
        await share.yield_to_acks()
        started.set()

    with share.acknowledging():
        assert share.acknowledging_now == 1
        task = asyncio.create_task(row())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not started.is_set()
    assert share.acknowledging_now == 0
    await asyncio.wait_for(task, timeout=30)
    assert started.is_set()


async def test_a_flood_of_acknowledgements_cannot_starve_the_pipeline(clock: Clock):
    share = LoopShare(budget_s=1.0, ack_wait_s=0.0)  # never waits longer than ack_wait_s
    with share.acknowledging():
        await asyncio.wait_for(share.yield_to_acks(), timeout=30)


async def test_no_acknowledgement_means_no_wait(clock: Clock):
    share = LoopShare(budget_s=1.0)
    clock.now += 10  # a fresh budget after the first deferral
    await asyncio.wait_for(share.yield_to_acks(), timeout=30)


async def test_a_holding_acknowledgement_pauses_transactions_already_under_way(clock: Clock):
    share = LoopShare(budget_s=1.0, ack_wait_s=60)
    clock.now += 10
    progressed: list[int] = []

    async def row() -> None:
        for step in range(3):
            await share.turn()  # what each of its transactions awaits first
            progressed.append(step)

    with share.acknowledging():  # a webhook update: rows already running go on
        task = asyncio.create_task(row())
        await turns_until(lambda: len(progressed) == 3)
        await task
    progressed.clear()
    with share.acknowledging(hold=True):  # a KIE callback: they wait for its answer
        task = asyncio.create_task(row())
        for _ in range(20):
            await asyncio.sleep(0)
        assert progressed == []
    await asyncio.wait_for(task, timeout=30)
    assert progressed == [0, 1, 2]
