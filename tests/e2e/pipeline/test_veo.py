"""Veo 3.1 through the whole pipeline (real app, KIE emulator's Veo routes, fake Telegram): the
Market path's exactly-once guarantees, tested the same way (test_happy, test_faults_kie,
test_recovery, test_crash): charged once, one task per generation, refunded once, callback or
poll whichever comes first, an unknown create resolved without a second task."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.services.generation import SourceImage
from kie_client.catalog import Catalog
from kiebot.app import build_app
from testkit.kie import CallbackRetry
from testkit.kie.media import make_png
from testkit.stack import LocalStack
from tests.conftest import wait_until
from tests.e2e.pipeline.helpers import (
    BONUS,
    balance,
    ledger_reasons,
    make_user,
    media_messages,
    plain_stack,
    start,
    wait_final,
)

VEO = "veo31_fast"
PRICE = Catalog().price("veo31_fast", {})  # 720p, 16:9 (kie_client/catalog/data/veo.toml)
SPENT = [("signup_bonus", BONUS), ("spend", -PRICE)]
REFUNDED = [("refund", PRICE), ("signup_bonus", BONUS), ("spend", -PRICE)]


def veo_requests(stack, route: str) -> list:
    return [r for r in stack.kie.requests if r.path == f"/api/v1/veo/{route}"]


async def test_veo_video_is_charged_once_stored_and_sent_as_video(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        started = await start(stack, model_key=VEO, prompt="a paper boat in the rain",
                              options={"aspect_ratio": "9:16"})
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and g.cost == PRICE and g.callback_received_at
        sent = media_messages(tg)
        assert len(sent) == 1 and sent[0].kind == "video"
        assert await ledger_reasons(stack) == SPENT
        (create,) = veo_requests(stack, "generate")
        assert create.json["model"] == "veo3_fast" and create.json["aspect_ratio"] == "9:16"
        assert create.json["generationType"] == "TEXT_2_VIDEO"
        assert "api=veo" in create.json["callBackUrl"]
        assert not [r for r in stack.kie.requests if r.path.endswith("/createTask")]
        task = stack.kie.tasks[g.task_id]
        assert task.api == "veo" and len(stack.kie.tasks) == 1


async def test_veo_callback_with_results_needs_no_record_info(tmp_path):
    async with plain_stack(tmp_path, settings={"CALLBACK_GRACE_SECONDS": "600"}) as stack:
        tg = await make_user(stack)
        started = await start(stack, model_key=VEO)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and g.callback_received_at is not None
        assert veo_requests(stack, "record-info") == []
        assert len(media_messages(tg)) == 1


async def test_dropped_veo_callback_is_recovered_by_polling_record_info(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.drop_callbacks = 1
        started = await start(stack, model_key=VEO)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and g.callback_received_at is None
        assert veo_requests(stack, "record-info")
        assert len(media_messages(tg)) == 1
        assert await ledger_reasons(stack) == SPENT


async def test_polling_only_veo_generation_lags_and_still_delivers_once(tmp_path):
    async with plain_stack(tmp_path, webhook=False) as stack:
        tg = await make_user(stack)
        stack.kie.faults.record_lag = 0.5  # record-info trails the task
        started = await start(stack, model_key=VEO)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and len(media_messages(tg)) == 1
        assert "callBackUrl" not in veo_requests(stack, "generate")[0].json


async def test_three_concurrent_veo_callbacks_deliver_once(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.callback_copies = 3
        started = await start(stack, model_key=VEO)
        g = await wait_final(stack, started.generation.id)
        await stack.settle()
        assert g.status == "succeeded" and len(media_messages(tg)) == 1
        assert await ledger_reasons(stack) == SPENT
        assert sum(1 for a in stack.kie.callbacks if a.task_id == g.task_id) >= 3


async def test_veo_callback_before_the_create_response_was_saved(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.hang_creates = 1
        stack.kie.faults.hang_seconds = 2.0
        started = await start(stack, model_key=VEO)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and list(stack.kie.tasks) == [g.task_id]
        await wait_until(lambda: all(r.status is not None for r in veo_requests(stack, "generate")),
                         timeout=10)
        await stack.settle()
        again = await stack.app.repository.get_generation(g.id)
        assert again.task_id == g.task_id and again.status == "succeeded"
        assert len(media_messages(tg)) == 1


async def test_lost_veo_create_response_never_generates_twice(tmp_path):
    async with plain_stack(tmp_path, settings={"KIE_TIMEOUT_SECONDS": "1"}) as stack:
        tg = await make_user(stack)
        stack.kie.faults.hang_creates = 1
        stack.kie.faults.hang_seconds = 6.0
        stack.kie.faults.callback_delay = 2.0  # arrives after we gave up on the response

        started = await start(stack, model_key=VEO)

        async def unknown():
            g = await stack.app.repository.get_generation(started.generation.id)
            return g.status == "submit_unknown"

        await wait_until(unknown, timeout=10)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and len(stack.kie.tasks) == 1
        assert len(veo_requests(stack, "generate")) == 1
        assert len(media_messages(tg)) == 1
        assert await balance(stack) == BONUS - PRICE


async def test_veo_failure_refunds_exactly_once(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.fail_next = 1
        stack.kie.faults.fail_code = "400"
        stack.kie.faults.fail_msg = "Your prompt was flagged by Website as violating content policies."
        stack.kie.faults.callback_copies = 2  # the failure callback, twice
        started = await start(stack, model_key=VEO)
        g = await wait_final(stack, started.generation.id)
        await stack.settle()
        assert g.status == "failed" and "flagged" in g.error and g.fail_code == "400"
        assert veo_requests(stack, "record-info")  # a refund is confirmed, never a body's word
        assert await balance(stack) == BONUS
        assert await ledger_reasons(stack) == REFUNDED
        assert sum("refunded" in e.text for e in tg.bot_messages) == 1
        assert not media_messages(tg)


async def test_veo_failure_found_by_polling_refunds_once(tmp_path):
    async with plain_stack(tmp_path, webhook=False) as stack:
        await make_user(stack)
        stack.kie.faults.fail_next = 1
        started = await start(stack, model_key=VEO)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "failed"
        assert await ledger_reasons(stack) == REFUNDED


async def test_first_and_last_frame_from_two_photos(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        photos = [SourceImage(make_png(64, 36, f"p{i}"), "image/png", f"p{i}.png") for i in range(2)]
        started = await start(stack, model_key="veo31_lite", source_images=photos)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and len(media_messages(tg)) == 1
        body = veo_requests(stack, "generate")[0].json
        assert body["generationType"] == "FIRST_AND_LAST_FRAMES_2_VIDEO"
        assert len(body["imageUrls"]) == 2 and len(stack.kie.uploads) == 2
        stored = [stack.kie.uploads[u.split("/files/", 1)[1]].data for u in body["imageUrls"]]
        assert stored == [p.data for p in photos]  # in the order the user sent them
        lite = Catalog().price("veo31_lite", {})
        assert await ledger_reasons(stack) == [("signup_bonus", BONUS), ("spend", -lite)]


async def test_veo_submit_unknown_without_callback_is_refunded_after_its_window(tmp_path):
    async with plain_stack(tmp_path, webhook=False, settings={"KIE_TIMEOUT_SECONDS": "0.5"}) as stack:
        await make_user(stack)
        stack.kie.faults.hang_creates = 1
        stack.kie.faults.hang_seconds = 3.0
        started = await start(stack, model_key=VEO)
        repo = stack.app.repository

        async def unknown():
            g = await repo.get_generation(started.generation.id)
            return g if g.status == "submit_unknown" else None

        g = await wait_until(unknown, timeout=10)
        assert g.task_id is None and len(stack.kie.tasks) == 1
        pipeline = stack.app.generations.pipeline
        real_clock = pipeline.clock
        pipeline.clock = lambda: real_clock() + timedelta(minutes=21)
        await repo.update_fields(g.id, next_poll_at=g.submitted_at)
        g = await wait_final(stack, g.id)
        assert g.status == "failed" and "did not confirm" in g.error
        assert await ledger_reasons(stack) == REFUNDED
        assert len(stack.kie.tasks) == 1


@pytest.mark.slow
async def test_sigkill_inside_veo_generate_resolves_by_the_late_callback(tmp_path):
    """The crash test's step 5 on the Veo path: `kiebot run` dies while generate's answer is
    held; the restarted submitter must not generate again and Veo's callback finishes it."""
    settings = {"LEASE_SECONDS": "3", "KIE_TIMEOUT_SECONDS": "3"}
    async with LocalStack(tmp_path, in_process=False, settings=settings) as stack:
        await stack.start_process()
        client = build_app(stack.settings)
        try:
            uid = 501
            stack.telegram.user(uid, first_name="veo")
            await client.repository.register_user(uid, username=None, first_name="veo",
                                                  last_name=None, language="en",
                                                  signup_bonus=BONUS)
            stack.kie.faults.hang_creates = 1
            stack.kie.faults.hang_seconds = 20.0
            stack.kie.faults.callback_delay = 5.0
            stack.kie.callback_retry = CallbackRetry(retries=60, backoff=0.25, max_backoff=2.0)
            started = await client.generations.start(
                user_id=uid, chat_id=uid, model_key=VEO, options={}, prompt="crash test veo",
                request_key="crash-veo")
            await wait_until(lambda: len(stack.kie.tasks) == 1, timeout=30)
            await stack.kill_process()
            stack.kie.faults.hang_creates = 0
            await stack.start_process()

            async def done():
                g = await client.repository.get_generation(started.generation.id)
                return g if g.is_final and g.delivered_at is not None else None

            g = await wait_until(done, timeout=60, interval=0.1)
            assert g.status == "succeeded"
            assert len(stack.kie.tasks) == 1  # one KIE task, never a second
            ledger = sorted((e.reason, e.delta) for e in await client.repository.ledger(uid, limit=50))
            assert ledger == SPENT
            videos = [e for e in stack.telegram.user(uid).bot_messages if e.media]
            assert len(videos) == 1
            assert await client.repository.ledger_check() == []
        finally:
            await client.stop()
