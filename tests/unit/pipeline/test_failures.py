"""Every way a paid generation can end without a result: refunded once, told once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiogram.methods import SendMessage

from bot.services.pipeline.complete import CallbackOutcome
from storage.models import Stage
from tests.unit.pipeline.harness import CHAT_ID, PRICE, SIGNUP_BONUS



async def _submitted(world):
    g = await world.start()
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    return g, task.task_id


async def _told_once(world, g_id: int, *phrases: str) -> None:
    """The deliverer sends one failure message naming the refund, and records it."""
    assert await world.run("deliver") == 1
    assert await world.run("deliver") == 0
    (message,) = world.bot.methods
    assert isinstance(message, SendMessage) and message.chat_id == CHAT_ID
    for phrase in (f"{PRICE}⭐ refunded", *phrases):
        assert phrase in message.text
    assert (await world.row(g_id)).delivered_at == world.clock()


async def test_kie_fail_is_refunded_once_and_told_once(world):
    g, task_id = await _submitted(world)
    world.kie.fail(task_id, "prompt contains prohibited content")
    assert await world.callback(g.id, task_id) is CallbackOutcome.accepted

    assert await world.run("poll") == 1
    g = await world.row(g.id)
    assert (g.status, g.fail_code) == ("failed", "422")
    assert "prompt contains prohibited content" in g.error
    assert world.kicks[-1] == "deliver"
    assert await world.balance() == SIGNUP_BONUS
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]

    # KIE saying "fail" again (a second callback) changes nothing.
    assert await world.callback(g.id, task_id) is CallbackOutcome.accepted
    assert await world.run("poll") == 0
    await _told_once(world, g.id, "prompt contains prohibited content")
    for stage in Stage:
        assert await world.run(stage) == 0, stage
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
    assert world.files.requests == [] and len(world.bot.methods) == 1


async def test_a_stuck_generation_expires_at_its_deadline_and_is_refunded_once(world):
    g, task_id = await _submitted(world)
    assert g.deadline_at == world.clock() + world.config.image_expiry

    # KIE never finishes. Just before the deadline nothing expires…
    world.clock.now = g.deadline_at - timedelta(seconds=1)
    assert await world.run("expire") == 0
    assert (await world.row(g.id)).status == "generating"

    # …at the deadline it does, once.
    world.clock.now = g.deadline_at
    assert await world.run("expire") == 1
    g = await world.row(g.id)
    assert g.status == "failed" and "30 minutes" in g.error
    assert await world.balance() == SIGNUP_BONUS
    assert await world.run("expire") == 0
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]

    # KIE finishing after all is too late: the row stays failed and refunded once.
    world.kie.succeed(task_id)
    assert await world.callback(g.id, task_id) is CallbackOutcome.accepted
    assert await world.run("poll") == 0 and await world.run("store") == 0
    await _told_once(world, g.id, "30 minutes")
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
    assert world.files.requests == []


async def test_the_failure_message_is_not_held_back_by_a_poll_that_will_never_run(world):
    g, _ = await _submitted(world)
    world.clock.now = g.deadline_at - timedelta(seconds=1)
    assert await world.run("poll") == 1  # KIE still working: next poll in 15-30 s
    world.clock.now = g.deadline_at
    assert await world.run("expire") == 1
    assert await world.run("deliver") == 1


async def test_cancel_while_queued_refunds_and_never_submits(world):
    g = await world.start()
    assert await world.generations.cancel(user_id=g.user_id, generation_id=g.id)
    g = await world.row(g.id)
    assert (g.status, g.error) == ("failed", "cancelled")
    assert g.delivered_at == world.clock()  # the handler answers the Cancel tap itself
    assert await world.balance() == SIGNUP_BONUS
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]

    assert not await world.generations.cancel(user_id=g.user_id, generation_id=g.id)
    for stage in Stage:
        assert await world.run(stage) == 0, stage
    assert world.kie.creates == [] and world.bot.methods == []
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]


async def test_cancel_is_refused_once_the_row_was_submitted(world):
    g, _ = await _submitted(world)
    assert not await world.generations.cancel(user_id=g.user_id, generation_id=g.id)
    assert (await world.row(g.id)).status == "generating"
    assert await world.ledger(g.id) == [("spend", -PRICE)]
