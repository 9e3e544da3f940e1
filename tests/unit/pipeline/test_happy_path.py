"""queued → generating → storing → succeeded → delivered, one pass at a time."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from aiogram.methods import SendPhoto
from kie_client.callbacks import check_callback_token
from storage.repository import CALLBACK_RESULTS

from bot.services.pipeline.complete import CallbackOutcome
from storage.models import Stage
from tests.unit.pipeline.fakes import PNG
from tests.unit.pipeline.harness import (
    CALLBACK_SECRET,
    CHAT_ID,
    PRICE,
    PROMPT,
    PUBLIC_BASE_URL,
    SIGNUP_BONUS,
)



async def test_webhook_mode_callback_one_task_one_charge_one_send(world):
    g = await world.start()
    assert g.status == "queued"
    assert await world.balance() == SIGNUP_BONUS - PRICE
    assert await world.ledger(g.id) == [("spend", -PRICE)]
    assert world.kicks == ["submit"]

    assert await world.run("submit") == 1
    g = await world.row(g.id)
    (task,) = world.kie.creates
    assert (g.status, g.task_id, g.kie_state) == ("generating", task.task_id, "waiting")
    assert g.submitted_at == world.clock()
    # Webhook mode waits CALLBACK_GRACE for the callback before the first recordInfo.
    assert g.next_poll_at == world.clock() + timedelta(seconds=world.config.callback_grace_s)
    # The callback URL names the generation and carries its token: a lost create answer is
    # recoverable from the callback alone.
    url = urlsplit(task.callback_url)
    assert f"{url.scheme}://{url.netloc}" == PUBLIC_BASE_URL
    assert url.path == f"/kie/callback/{g.id}"
    assert check_callback_token(CALLBACK_SECRET, g.id, parse_qs(url.query)["token"][0])
    assert task.input["prompt"] == PROMPT

    assert await world.run("poll") == 0  # not due: waiting for the callback
    assert world.kie.record_reads == []

    world.clock.advance(7)
    world.kie.succeed(task.task_id)
    assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    # The callback is authenticated (token in its URL; the server checks it) and its success
    # body lists the results: that is the record, no recordInfo (10/s per account) needed.
    assert world.kicks[-1] == "store"
    g = await world.row(g.id)
    assert g.status == "storing" and g.callback_received_at == world.clock()
    assert g.result_urls == world.kie.tasks[task.task_id].result_urls  # KIE's, until stored
    assert g.kie_state == CALLBACK_RESULTS
    assert await world.run("poll") == 0
    assert world.kie.record_reads == []

    world.clock.advance(1)
    assert await world.run("store") == 1
    g = await world.row(g.id)
    assert g.status == "succeeded"
    assert world.files.requests == world.kie.tasks[task.task_id].result_urls
    (stored,) = world.stored_files()
    assert stored.read_bytes() == PNG
    assert g.result_urls == [f"{PUBLIC_BASE_URL}/media/{stored.relative_to(world.media_root)}"]
    assert world.kicks[-1] == "deliver"

    assert world.bot.methods == []
    world.clock.advance(1)
    assert await world.run("deliver") == 1
    (sent,) = world.bot.methods
    assert isinstance(sent, SendPhoto) and sent.chat_id == CHAT_ID
    assert PROMPT in sent.caption
    # Streamed from the store into the upload: what aiogram's session would send.
    assert b"".join([chunk async for chunk in sent.photo.read(None)]) == PNG
    assert (await world.row(g.id)).delivered_at == world.clock()

    # Done: no stage finds anything more, and the user paid exactly once.
    for stage in Stage:
        assert await world.run(stage) == 0, stage
    assert len(world.kie.creates) == 1 and len(world.bot.methods) == 1
    assert await world.balance() == SIGNUP_BONUS - PRICE
    assert await world.ledger(g.id) == [("spend", -PRICE)]


async def test_polling_mode_finds_the_result_without_a_callback(make_world):
    world = await make_world(public_base_url=None)
    g = await world.start()
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    assert task.callback_url is None  # no public URL: KIE cannot call us
    g = await world.row(g.id)
    assert g.next_poll_at == world.clock() + timedelta(seconds=world.config.poll_initial_s)

    world.clock.advance(world.config.poll_initial_s)
    assert await world.run("poll") == 1  # KIE still waiting: polled again later
    g = await world.row(g.id)
    assert (g.status, g.poll_attempts) == ("generating", 1)

    world.kie.succeed(task.task_id)
    world.clock.advance(world.config.poll_initial_s)
    assert await world.run("poll") == 1
    assert (await world.row(g.id)).status == "storing"
    assert await world.run("store") == 1
    assert await world.run("deliver") == 1
    assert [type(m) for m in world.bot.methods] == [SendPhoto]
    assert world.kie.record_reads == [task.task_id, task.task_id]
    assert await world.ledger(g.id) == [("spend", -PRICE)]
