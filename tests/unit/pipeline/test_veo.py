"""The Veo path through the same pipeline, time moved by hand: repeats harmless, a callback acted on
once, a lost generate answer never generated again, a refund decided by record-info and made once
(the Market path's tests in test_repeats.py and test_submit_unknown.py, on Veo's routes)."""

from __future__ import annotations

import asyncio
import json

from aiogram.methods import SendMessage, SendVideo

from bot.services.pipeline.complete import CallbackOutcome
from storage.models import Stage
from storage.repository import CALLBACK_RESULTS
from tests.unit.pipeline.harness import CALLBACK_SECRET, PUBLIC_BASE_URL, SIGNUP_BONUS
from kie_client.callbacks import make_callback_token
from kie_client.catalog import Catalog

VEO = "veo31_fast"
PRICE = Catalog().price(VEO, {})  # 720p, 16:9: the data file's price (data/veo.toml)


async def test_each_veo_pass_run_a_second_time_changes_nothing(world):
    g = await world.start(model_key=VEO)
    assert g.options["_api"] == "veo" and g.cost == PRICE
    for stage, status in [("submit", "generating"), ("poll", "storing"), ("store", "succeeded"),
                          ("deliver", "succeeded")]:
        if stage == "poll":  # no callback: the poller finds the result after the grace
            (task,) = world.kie.creates
            world.kie.succeed(task.task_id)
            world.clock.advance(world.config.callback_grace_s)
        assert await world.run(stage) == 1, stage
        assert (await world.row(g.id)).status == status
        after_first = await world.snapshot(g.id)
        assert await world.run(stage) == 0, stage
        assert await world.snapshot(g.id) == after_first, stage

    (task,) = world.kie.creates
    token = make_callback_token(CALLBACK_SECRET, g.id)
    assert task.api == "veo" and task.model == "veo3_fast"
    assert task.callback_url == f"{PUBLIC_BASE_URL}/kie/callback/{g.id}?token={token}&api=veo"
    assert world.kie.record_reads == [task.task_id]  # Veo's record-info, once
    assert [type(m) for m in world.bot.methods] == [SendVideo]
    assert await world.ledger(g.id) == [("spend", -PRICE)]


async def test_a_veo_callback_delivered_several_times_is_acted_on_once(world):
    g = await world.start(model_key=VEO)
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    world.kie.succeed(task.task_id)
    assert "info" in json.loads(world.kie.callback_body(task.task_id))["data"]  # Veo's shape
    outcomes = [await world.callback(g.id, task.task_id)]
    outcomes += await asyncio.gather(*(world.callback(g.id, task.task_id) for _ in range(3)))
    assert set(outcomes) == {CallbackOutcome.accepted}
    assert world.kicks.count(Stage.store) == 1
    assert world.kie.record_reads == []  # the callback carried the results
    assert await world.run("store") == 1 and await world.run("deliver") == 1
    assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    for stage in Stage:
        assert await world.run(stage) == 0, stage
    assert len(world.kie.creates) == 1 and len(world.files.requests) == 1
    assert [type(m) for m in world.bot.methods] == [SendVideo]
    assert await world.ledger(g.id) == [("spend", -PRICE)]


async def test_a_lost_generate_answer_is_resolved_by_the_veo_callback_never_a_second_task(world):
    world.kie.lose_next_create_answer = True
    g = await world.start(model_key=VEO)
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    assert (await world.row(g.id)).status == "submit_unknown"
    world.clock.advance(40)
    assert await world.run("submit") == 0 and await world.run("poll") == 0
    world.kie.succeed(task.task_id)
    assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    row = await world.row(g.id)
    assert (row.status, row.task_id, row.kie_state) == ("storing", task.task_id, CALLBACK_RESULTS)
    assert await world.run("store") == 1 and await world.run("deliver") == 1
    assert len(world.kie.creates) == 1 and world.kie.record_reads == []
    assert await world.balance() == SIGNUP_BONUS - PRICE


async def test_a_veo_failure_is_confirmed_by_record_info_and_refunded_once(world):
    g = await world.start(model_key=VEO)
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    world.kie.fail(task.task_id, "Your prompt was flagged by Website as violating content policies.")
    for _ in range(2):  # the failure callback, twice: it only wakes the poller
        assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    assert (await world.row(g.id)).status == "generating"
    assert await world.run("poll") == 1
    assert world.kie.record_reads == [task.task_id]
    row = await world.row(g.id)
    assert row.status == "failed" and "flagged" in row.error and row.fail_code == "422"
    assert await world.balance() == SIGNUP_BONUS
    assert await world.run("deliver") == 1
    (message,) = world.bot.methods
    assert isinstance(message, SendMessage) and f"{PRICE}⭐ refunded" in message.text
    world.kie.succeed(task.task_id)  # a late success changes nothing
    assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    for stage in Stage:
        assert await world.run(stage) == 0, stage
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
