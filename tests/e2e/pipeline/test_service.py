"""GenerationService's handler-facing API: photos in, animate, repeats, limits, cancel, resend."""

from __future__ import annotations

import pytest

from kiebot.app import build_app
from bot.services.generation import SourceImage, SourceImageError
from kie_client.catalog import InvalidPromptError
from testkit.kie.media import make_png
from storage.errors import InFlightLimitError, InsufficientBalanceError
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

PHOTO = SourceImage(data=make_png(64, 48, "source"), mime_type="image/png", file_name="cat.png")


async def test_image_to_video_uploads_the_photo_and_animate_reuses_a_result(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        first = await start(stack, model_key="bytedance_v1pro_i2v", prompt="the cat blinks",
                            source_image=PHOTO, card=False)
        picture = await start(stack, prompt="a quiet harbour", card=False)
        g = await wait_final(stack, first.generation.id)
        assert g.status == "succeeded"
        task = stack.kie.tasks[g.task_id]
        uploaded = [name for name in stack.kie.uploads if name.endswith(".png")]
        assert len(uploaded) == 1 and f"g{g.id}_" in uploaded[0]
        assert task.input["image_url"].endswith(uploaded[0])
        assert stack.kie.uploads[uploaded[0]].data == PHOTO.data

        # "Animate this image": the stored result of an image generation becomes the source.
        pic = await wait_final(stack, picture.generation.id)
        animated = await start(stack, model_key="kling_26_i2v", prompt="boats drift",
                               source_generation_id=pic.id, card=False)
        a = await wait_final(stack, animated.generation.id)
        assert a.status == "succeeded"
        stored_png = (tmp_path / "media" / pic.result_urls[0].split("/media/", 1)[1]).read_bytes()
        sources = [f for name, f in stack.kie.uploads.items() if f"g{a.id}_" in name]
        assert len(sources) == 1 and sources[0].data == stored_png
        assert sorted(m.kind for m in media_messages(tg)) == ["photo", "video", "video"]


async def test_bad_photos_and_other_peoples_results_are_refused_before_charging(tmp_path):
    async with plain_stack(tmp_path) as stack:
        await make_user(stack, 111)
        await make_user(stack, 222)
        other = await start(stack, 222, prompt="someone else's picture", card=False)
        await wait_final(stack, other.generation.id, delivered=False)
        gif = SourceImage(data=b"GIF89a" + b"0" * 10, mime_type="image/gif", file_name="x.gif")
        with pytest.raises(SourceImageError):
            await start(stack, model_key="kling_26_i2v", prompt="x", source_image=gif)
        with pytest.raises(SourceImageError):
            await start(stack, model_key="kling_26_i2v", prompt="x")
        with pytest.raises(SourceImageError):
            await start(stack, model_key="kling_26_i2v", prompt="x",
                        source_generation_id=other.generation.id)
        with pytest.raises(InvalidPromptError):
            await start(stack, model_key="flux2_pro_t2i", prompt="x")
        assert await balance(stack, 111) == BONUS


async def test_double_tap_in_flight_limit_and_balance(tmp_path):
    async with plain_stack(tmp_path, settings={"MAX_IN_FLIGHT": "2"}) as stack:
        await make_user(stack)
        app = stack.app
        kwargs = dict(user_id=111, chat_id=111, model_key="seedream_45_t2i", options={},
                      prompt="twice", request_key="tap-1")
        one = await app.generations.start(**kwargs)
        two = await app.generations.start(**kwargs)
        assert one.created and not two.created and two.generation.id == one.generation.id
        second = await app.generations.start(**{**kwargs, "request_key": "tap-2"})
        with pytest.raises(InFlightLimitError):
            await app.generations.start(**{**kwargs, "request_key": "tap-3"})
        await wait_final(stack, one.generation.id, delivered=False)
        await wait_final(stack, second.generation.id, delivered=False)
        with pytest.raises(InsufficientBalanceError):
            await app.generations.start(**{**kwargs, "request_key": "tap-4",
                                           "model_key": "kling_26_t2v", "options": {"duration": "10", "sound": True}})
        assert await balance(stack) == BONUS - 16


async def test_cancel_while_queued_refunds_and_never_reaches_kie(tmp_path):
    async with plain_stack(tmp_path, in_process=False) as stack:
        client = build_app(stack.settings)  # never started: rows stay queued
        try:
            from migrations.runner import ensure_schema

            await ensure_schema(client.engine)
            await client.repository.register_user(111, username=None, first_name="A", last_name=None,
                                                  language="en", signup_bonus=BONUS)
            started = await client.generations.start(
                user_id=111, chat_id=111, model_key="seedream_45_t2i", options={}, prompt="never mind",
                request_key="c1")
            assert not await client.generations.cancel(user_id=222, generation_id=started.generation.id)
            assert await client.generations.cancel(user_id=111, generation_id=started.generation.id)
            assert not await client.generations.cancel(user_id=111, generation_id=started.generation.id)
            g = await client.generations.get(user_id=111, generation_id=started.generation.id)
            assert g.status == "failed" and g.delivered_at is not None
            assert await client.generations.get(user_id=222, generation_id=g.id) is None
            assert await client.generations.get(user_id=None, generation_id=g.id) == g
            entries = sorted((e.reason, e.delta) for e in await client.repository.ledger(111))
            assert entries == [("refund", 8), ("signup_bonus", BONUS), ("spend", -8)]
            assert not stack.kie.tasks
        finally:
            await client.stop()


async def test_library_and_resend(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack)
        ids = []
        for prompt in ("one", "two", "three"):
            s = await start(stack, prompt=prompt, card=False)
            ids.append((await wait_final(stack, s.generation.id)).id)
        items, total = await stack.app.generations.library(user_id=111, page=0, page_size=2)
        assert total == 3 and len(items) == 2
        items2, _ = await stack.app.generations.library(user_id=111, page=1, page_size=2)
        assert len(items2) == 1 and {g.id for g in items + items2} == set(ids)
        before = len(media_messages(tg))
        assert await stack.app.generations.resend(user_id=111, chat_id=111, generation_id=ids[0],
                                                  as_document=True)
        assert not await stack.app.generations.resend(user_id=999, chat_id=999, generation_id=ids[0])
        after = media_messages(tg)
        assert len(after) == before + 1 and after[-1].kind == "document"
        assert await ledger_reasons(stack) == [("signup_bonus", BONUS)] + [("spend", -8)] * 3
