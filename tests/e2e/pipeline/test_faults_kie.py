"""KIE misbehaving: dropped, repeated and early callbacks, lost create responses, failures,
expired or untrusted result URLs, oversized results."""

from __future__ import annotations


import aiohttp


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


async def test_dropped_callback_is_recovered_by_polling(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.drop_callbacks = 1
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded"
        assert g.callback_received_at is None  # the poller found it, not a callback
        assert len(media_messages(tg)) == 1


async def test_three_concurrent_callbacks_deliver_once(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.callback_copies = 3
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        await stack.settle()  # every copy handled, more passes run: then count
        assert g.status == "succeeded"
        assert len(media_messages(tg)) == 1
        assert await ledger_reasons(stack) == [("signup_bonus", BONUS), ("spend", -8)]
        assert sum(1 for a in stack.kie.callbacks if a.task_id == g.task_id) >= 3


async def test_callback_before_create_response_was_saved(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        # KIE creates the task, finishes it and calls back while our create call still waits.
        stack.kie.faults.hang_creates = 1
        stack.kie.faults.hang_seconds = 2.0
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded"
        assert len(stack.kie.tasks) == 1 and g.task_id in stack.kie.tasks
        assert len(media_messages(tg)) == 1
        # The held create response arrives late (and is handled): nothing changes.
        await wait_until(lambda: all(r.status is not None for r in stack.kie.requests
                                     if r.path.endswith("/createTask")), timeout=10)
        await stack.settle()
        again = await stack.app.repository.get_generation(g.id)
        assert again.task_id == g.task_id and again.status == "succeeded"
        assert len(media_messages(tg)) == 1


async def test_lost_create_response_never_creates_twice(tmp_path):
    settings = {"KIE_TIMEOUT_SECONDS": "1"}
    async with plain_stack(tmp_path, settings=settings) as stack:
        tg = await make_user(stack)
        stack.kie.faults.hang_creates = 1
        stack.kie.faults.hang_seconds = 6.0
        stack.kie.faults.callback_delay = 2.0  # arrives after we gave up on the response
        started = await start(stack)

        async def unknown():
            g = await stack.app.repository.get_generation(started.generation.id)
            return g.status == "submit_unknown"

        await wait_until(unknown, timeout=10)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded"
        assert len(stack.kie.tasks) == 1  # never a second createTask
        assert len(media_messages(tg)) == 1
        assert await balance(stack) == BONUS - 8


async def test_kie_failure_refunds_exactly_once(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.fail_next = 1
        stack.kie.faults.fail_msg = "prompt contains prohibited content"
        stack.kie.faults.callback_copies = 2  # the 501 callback, twice
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        await stack.settle()
        assert g.status == "failed" and "prohibited content" in g.error
        assert await balance(stack) == BONUS
        assert await ledger_reasons(stack) == [("refund", 8), ("signup_bonus", BONUS), ("spend", -8)]
        texts = [e.text for e in tg.bot_messages if "refunded" in e.text]
        assert len(texts) == 1 and "8⭐ refunded" in texts[0]
        assert not media_messages(tg)


async def test_kie_failure_found_by_polling_refunds_once(tmp_path):
    async with plain_stack(tmp_path, webhook=False) as stack:
        await make_user(stack)
        stack.kie.faults.fail_next = 1
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "failed"
        assert await ledger_reasons(stack) == [("refund", 8), ("signup_bonus", BONUS), ("spend", -8)]


async def test_expired_result_url_gets_a_fresh_link(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.expire_results = True
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded"
        assert len(media_messages(tg)) == 1
        assert any("download-url" in r.path for r in stack.kie.requests)


async def test_result_on_a_foreign_host_is_refused_and_refunded(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        # Same emulator, but named "localhost": not in KIE_RESULT_HOSTS (127.0.0.1 only).
        stack.kie.faults.foreign_result_base = stack.kie.base_url.replace("127.0.0.1", "localhost")
        started = await start(stack)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "failed"
        assert "trust" in g.error
        assert await balance(stack) == BONUS
        assert not media_messages(tg)
        assert not (tmp_path / "media" / "111" / "image").exists()


async def test_sixty_megabyte_video_is_sent_as_a_link(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        stack.kie.faults.large_result_bytes = 60 * 1024 * 1024
        started = await start(stack, model_key="kling_26_t2v", prompt="a long take")
        g = await wait_final(stack, started.generation.id, timeout=40)
        assert g.status == "succeeded"
        assert not media_messages(tg)
        link = next(e for e in tg.bot_messages if "/media/" in e.text)
        url = link.text[link.text.index("http"):].split()[0]
        assert url == g.result_urls[0]
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "video/mp4"
            assert int(resp.headers["Content-Length"]) >= 60 * 1024 * 1024
