"""Issue 13's two reconciled paths end to end (fake Telegram, KIE emulator, the real bot): a talking
photo (a photo and a voice message, priced per second of the voice) and Veo 3.1 from a photo
(one menu entry for text and photos, KIE's dedicated Veo routes) — each charged what its Generate
button showed, each delivered, each input reaching KIE as an upload of the user's own bytes."""

from __future__ import annotations

from kie_client.catalog import Catalog
from tests.e2e.conversation.conftest import click, ledger, png_bytes, seen, wait_media

CATALOG = Catalog()
AVATAR = CATALOG.get("kling_avatar")
PER_SECOND = AVATAR.rule.unit({})[0]
VOICE = b"OggS" + bytes(range(256)) * 8  # what the user recorded


async def test_a_talking_photo_and_a_veo_clip_from_a_photo(webhook_stack):
    ann = webhook_stack.telegram.user(2611, first_name="Ann", language_code="en")
    await webhook_stack.app.accounts.register(2611, language_code="en")
    await webhook_stack.app.accounts.admin_credit("2611", "=200", admin_id=1)
    kie = webhook_stack.kie

    await ann.send_command("/start")
    await click(ann, "🗣 Talking photo")
    longest = int(PER_SECOND * AVATAR.audio_input.max_seconds)
    await click(ann, f"{AVATAR.name} · {int(PER_SECOND * AVATAR.audio_input.min_seconds)}⭐")
    await click(ann, f"Continue · {longest}⭐")  # no recording yet: the longest it takes
    await seen(ann, f"Send a photo for {AVATAR.name}")
    await ann.send_photo(png_bytes(48), caption="she says good morning")
    await seen(ann, "Send a voice message or an audio file")
    await ann.send_voice(VOICE, duration=4)
    await seen(ann, "Audio: ✅ attached")
    price = int(PER_SECOND * 4)
    await click(ann, f"Generate · {price}⭐")
    [clip] = await wait_media(ann, 1)
    assert clip.media[0].kind == "video"
    [task] = kie.tasks.values()
    assert task.model == AVATAR.kie_model and set(task.input) == {"prompt", "image_url", "audio_url"}
    assert kie.uploads[task.input["audio_url"].split("/files/", 1)[1]].data == VOICE

    veo = CATALOG.get("veo31_fast")
    veo_price = CATALOG.price(veo.key, {})
    await ann.send_command("/start")
    await click(ann, "🎬 Text to video")
    await click(ann, f"{veo.name} · {veo_price}⭐")
    await click(ann, f"Continue · {veo_price}⭐")
    await seen(ann, "To start from pictures")
    await ann.send_photo(png_bytes(64), caption="the lighthouse beam sweeps over the waves")
    await seen(ann, "Photo: ✅ attached")
    await click(ann, f"Generate · {veo_price}⭐")
    media = await wait_media(ann, 2)
    assert media[-1].media[0].kind == "video"
    veo_task = list(kie.tasks.values())[-1]
    assert (veo_task.api, veo_task.model) == ("veo", veo.kie_model)
    assert len(veo_task.input["imageUrls"]) == 1

    spent = [delta for reason, delta in await ledger(webhook_stack, 2611) if reason == "spend"]
    assert spent == [-price, -veo_price]
