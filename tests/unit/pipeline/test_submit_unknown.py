"""createTask's answer lost: KIE may have made (and billed) a task we cannot name. Never create
again; the callback naming the generation recovers it, else the window's end refunds."""

from __future__ import annotations

from datetime import timedelta

from aiogram.methods import SendMessage, SendPhoto

from bot.services.pipeline.complete import CallbackOutcome
from storage.models import Stage
from storage.repository import CALLBACK_RESULTS
from tests.unit.pipeline.harness import PRICE, SIGNUP_BONUS


async def _answer_lost(world):
    world.kie.lose_next_create_answer = True
    g = await world.start()
    assert await world.run("submit") == 1
    g = await world.row(g.id)
    (task,) = world.kie.creates  # KIE did create it
    assert (g.status, g.task_id) == ("submit_unknown", None)
    assert g.next_poll_at == world.clock() + world.config.submit_unknown_window
    return g, task.task_id


async def test_the_callback_naming_the_generation_resolves_it(world):
    g, task_id = await _answer_lost(world)
    world.clock.advance(40)
    assert await world.run("submit") == 0 and await world.run("poll") == 0

    world.kie.succeed(task_id)
    assert await world.callback(g.id, task_id) is CallbackOutcome.accepted
    g = await world.row(g.id)
    # It names the task and carries the results: straight to storing, no recordInfo.
    assert (g.status, g.task_id, g.kie_state) == ("storing", task_id, CALLBACK_RESULTS)

    assert await world.run("poll") == 0
    assert await world.run("store") == 1
    assert await world.run("deliver") == 1
    assert [type(m) for m in world.bot.methods] == [SendPhoto]
    assert len(world.kie.creates) == 1  # createTask was never repeated
    assert world.kie.record_reads == []
    assert await world.balance() == SIGNUP_BONUS - PRICE
    assert await world.ledger(g.id) == [("spend", -PRICE)]


async def test_a_fail_callback_naming_the_generation_records_the_task_and_wakes_the_poller(world):
    g, task_id = await _answer_lost(world)
    world.kie.fail(task_id)
    assert await world.callback(g.id, task_id) is CallbackOutcome.accepted
    g = await world.row(g.id)
    assert (g.status, g.task_id, g.next_poll_at) == ("generating", task_id, world.clock())
    assert await world.run("poll") == 1
    assert world.kie.record_reads == [task_id]  # a refund is confirmed by recordInfo
    assert (await world.row(g.id)).status == "failed"
    assert await world.balance() == SIGNUP_BONUS


async def test_without_a_callback_the_window_end_refunds_once(world):
    g, task_id = await _answer_lost(world)
    window_end = g.next_poll_at

    world.clock.now = window_end - timedelta(seconds=1)
    assert await world.run("poll") == 0
    assert (await world.row(g.id)).status == "submit_unknown"

    world.clock.now = window_end
    assert await world.run("poll") == 1
    g = await world.row(g.id)
    assert g.status == "failed" and "did not confirm" in g.error
    assert await world.balance() == SIGNUP_BONUS
    assert await world.run("poll") == 0
    assert await world.run("expire") == 0
    assert await world.run("deliver") == 1
    (message,) = world.bot.methods
    assert isinstance(message, SendMessage) and f"{PRICE}⭐ refunded" in message.text

    # KIE's callback arriving after the refund changes nothing.
    world.kie.succeed(task_id)
    assert await world.callback(g.id, task_id) is CallbackOutcome.accepted
    assert (await world.row(g.id)).status == "failed"
    for stage in Stage:
        assert await world.run(stage) == 0, stage
    assert len(world.kie.creates) == 1 and len(world.bot.methods) == 1
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
