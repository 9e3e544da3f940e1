"""A success callback's own result URLs are the record (no recordInfo), but every download still
passes SafeDownloader's allow-list, and one that fails asks recordInfo before anything else."""

from __future__ import annotations

import json

from aiogram.methods import SendMessage, SendPhoto

from bot.services.pipeline.complete import CallbackOutcome
from kie_client.callbacks import parse_callback
from storage.repository import CALLBACK_RESULTS
from tests.unit.pipeline.fakes import RESULT_HOST
from tests.unit.pipeline.harness import PRICE, SIGNUP_BONUS

FOREIGN = "https://files.example.net/r/elsewhere.png"


async def _callback_with(world, g, task_id: str, urls: list[str]) -> CallbackOutcome:
    """KIE's success callback for `task_id`, its resultJson listing `urls`."""
    body = json.loads(world.kie.callback_body(task_id))
    body["data"]["resultJson"] = json.dumps({"resultUrls": urls})
    return await world.generations.accept_callback(g.id, parse_callback(json.dumps(body).encode()))


async def _generating(world):
    g = await world.start()
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    return g, task.task_id


async def test_a_callback_url_the_allow_list_refuses_falls_back_to_record_info(world):
    g, task_id = await _generating(world)
    world.kie.succeed(task_id)  # what recordInfo will say: a URL on KIE's own file host
    assert await _callback_with(world, g, task_id, [FOREIGN]) is CallbackOutcome.accepted
    row = await world.row(g.id)
    assert (row.status, row.result_urls, row.kie_state) == ("storing", [FOREIGN], CALLBACK_RESULTS)
    assert world.kie.record_reads == []

    assert await world.run("store") == 1
    row = await world.row(g.id)
    assert row.status == "succeeded"
    assert world.kie.record_reads == [task_id]
    assert all(RESULT_HOST in url for url in world.files.requests)  # the foreign URL: never
    assert await world.run("deliver") == 1
    assert [type(m) for m in world.bot.methods] == [SendPhoto]
    assert await world.ledger(g.id) == [("spend", -PRICE)]


async def test_callback_urls_that_fail_and_a_failed_record_refund_once(world):
    g, task_id = await _generating(world)
    world.kie.succeed(task_id)
    assert await _callback_with(world, g, task_id, [FOREIGN]) is CallbackOutcome.accepted
    world.kie.fail(task_id)  # and recordInfo, which has the last word, says it failed
    assert await world.run("store") == 1
    row = await world.row(g.id)
    assert row.status == "failed"
    assert world.kie.record_reads == [task_id]
    assert world.files.requests == []
    assert await world.balance() == SIGNUP_BONUS
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
    assert await world.run("store") == 0
    assert await world.run("deliver") == 1
    assert [type(m) for m in world.bot.methods] == [SendMessage]


async def test_a_fail_callback_only_wakes_the_poller_which_confirms_before_refunding(world):
    g, task_id = await _generating(world)
    world.kie.fail(task_id)
    assert await world.callback(g.id, task_id) is CallbackOutcome.accepted
    row = await world.row(g.id)
    assert (row.status, row.next_poll_at) == ("generating", world.clock())
    assert await world.balance() == SIGNUP_BONUS - PRICE  # nothing decided by the body
    assert world.kie.record_reads == []
    assert await world.run("poll") == 1
    assert world.kie.record_reads == [task_id]
    assert (await world.row(g.id)).status == "failed"
    assert await world.balance() == SIGNUP_BONUS


async def test_a_success_callback_without_urls_only_wakes_the_poller(world):
    g, task_id = await _generating(world)
    world.kie.succeed(task_id)
    assert await _callback_with(world, g, task_id, []) is CallbackOutcome.accepted
    assert (await world.row(g.id)).status == "generating"
    assert await world.run("poll") == 1
    assert world.kie.record_reads == [task_id]
    assert (await world.row(g.id)).status == "storing"
