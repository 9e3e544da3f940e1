"""Happy paths: an image and a video model, with KIE's callback (webhook mode) and polling only."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("webhook", [True, False], ids=["callback", "polling"])
async def test_image_generation_is_charged_stored_and_delivered(tmp_path, webhook):
    async with plain_stack(tmp_path, webhook=webhook) as stack:
        tg = await make_user(stack)
        started = await start(stack, prompt="a red fox in the snow", card=True)
        assert started.created and started.position == 1
        assert started.generation.cost == 8
        assert await balance(stack) == BONUS - 8

        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded"
        assert len(stack.kie.tasks) == 1
        task = next(iter(stack.kie.tasks.values()))
        assert g.task_id == task.task_id
        assert (task.callback_url is not None) == webhook
        # Our own copy: served by our /media route, from the local store.
        assert g.result_urls and g.preview_url == g.result_urls[0]
        assert g.result_urls[0].startswith(f"http://127.0.0.1:{stack.port}/media/111/image/{g.id}_0_")
        files = list((tmp_path / "media" / "111" / "image").iterdir())
        assert len(files) == 1 and files[0].stat().st_size > 0

        photos = media_messages(tg)
        assert len(photos) == 1 and photos[0].kind == "photo"
        card = next(e for e in tg.bot_messages if e.message_id == g.progress_message_id)
        assert card.edited and "Done" in card.text
        assert not stack.telegram.flood_events  # the sender kept within Telegram's limits
        assert "a red fox in the snow" in photos[0].text
        assert await balance(stack) == BONUS - 8
        assert await ledger_reasons(stack) == [("signup_bonus", BONUS), ("spend", -8)]
        if webhook:
            assert g.callback_received_at is not None


@pytest.mark.parametrize("webhook", [True, False], ids=["callback", "polling"])
async def test_video_generation_is_sent_as_video(tmp_path, webhook):
    async with plain_stack(tmp_path, webhook=webhook) as stack:
        tg = await make_user(stack)
        started = await start(stack, model_key="kling_26_t2v", prompt="waves at dusk")
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and g.kind == "video"
        videos = media_messages(tg)
        assert [m.kind for m in videos] == ["video"]
        assert await balance(stack) == BONUS - started.generation.cost


async def test_results_go_to_supabase_storage_when_configured(tmp_path):
    from testkit.supabase import FakeSupabaseStorage

    key = "service-role-key-for-the-pipeline-test"
    async with FakeSupabaseStorage(key) as supa:
        settings = {"MEDIA_STORE": "supabase", "SUPABASE_URL": supa.url,
                    "SUPABASE_SERVICE_ROLE_KEY": key}
        async with plain_stack(tmp_path, settings=settings) as stack:
            tg = await make_user(stack)
            started = await start(stack, prompt="a bucketful")
            g = await wait_final(stack, started.generation.id)
            assert g.status == "succeeded"
            assert g.preview_url.startswith(supa.url) and "/generations/111/image/" in g.preview_url
            assert len(media_messages(tg)) == 1
            assert not (tmp_path / "media").exists()


async def test_a_callback_carrying_the_results_needs_no_record_info(tmp_path):
    """KIE's authenticated success callback lists the results: they are stored and delivered
    without a single recordInfo (10/s per account), while a forged one is refused
    (tests/e2e/pipeline/test_server.py). The grace is long, so the poller never asks first."""
    async with plain_stack(tmp_path, webhook=True,
                           settings={"CALLBACK_GRACE_SECONDS": "600"}) as stack:
        tg = await make_user(stack)
        started = await start(stack, card=False)
        g = await wait_final(stack, started.generation.id)
        assert g.status == "succeeded" and g.callback_received_at is not None
        await wait_until(lambda: len(media_messages(tg)) == 1, timeout=10)
        assert [r.path for r in stack.kie.requests if r.path.endswith("/recordInfo")] == []
        assert await ledger_reasons(stack) == [("signup_bonus", BONUS), ("spend", -8)]
