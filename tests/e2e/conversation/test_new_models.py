"""2026 models end to end (fake Telegram, KIE emulator, the real bot): a Kling 3.0 video with a
per-second price, a Nano Banana 2 edit, and a photo tool that takes no prompt — each charged the
price its Generate button showed, each delivered."""

from __future__ import annotations

from tests.e2e.conversation.conftest import click, ledger, png_bytes, seen, wait_media


async def test_kling_30_nano_banana_edit_and_remove_background(webhook_stack):
    ann = webhook_stack.telegram.user(2601, first_name="Ann", language_code="en")
    await webhook_stack.app.accounts.register(2601, language_code="en")
    await webhook_stack.app.accounts.admin_credit("2601", "=200", admin_id=1)

    await ann.send_command("/start")
    await click(ann, "🎬 Text to video")
    await seen(ann, "• Kling 3.0 — Newest Kling: 3–15 s, sound, up to 4K · from 21⭐")
    await click(ann, "Kling 3.0 · 21⭐")
    await click(ann, "Duration: 5 s ▸")
    await click(ann, "8 s")
    await seen(ann, "Price: 56⭐")  # 7⭐ a second, standard quality, no sound
    await click(ann, "Continue · 56⭐")
    await seen(ann, "Describe")
    await ann.send_text("a paper boat drifting down a rainy street")
    await seen(ann, "Ready to generate")
    await click(ann, "Generate · 56⭐")
    [video] = await wait_media(ann, 1)
    assert video.media[0].kind == "video"

    await ann.send_command("/start")
    await click(ann, "🖌 Edit a photo")
    await click(ann, "Nano Banana 2 Edit · 8⭐")
    await click(ann, "Continue · 8⭐")
    await seen(ann, "Send a photo for Nano Banana 2 Edit")
    await ann.send_photo(png_bytes(40), caption="put a knitted hat on the cat")
    await seen(ann, "Ready to generate")
    await click(ann, "Generate · 8⭐")
    media = await wait_media(ann, 2)
    assert media[-1].media[0].kind == "photo"

    await ann.send_command("/start")
    await click(ann, "🧰 Tools")
    await click(ann, "Remove background · 2⭐")
    await click(ann, "Continue · 2⭐")
    await ann.send_photo(png_bytes(32))
    await seen(ann, "Ready to generate")
    await click(ann, "Generate · 2⭐")
    media = await wait_media(ann, 3)
    assert media[-1].media[0].kind == "photo"

    spent = [delta for reason, delta in await ledger(webhook_stack, 2601) if reason == "spend"]
    assert spent == [-56, -8, -2]
    kie = webhook_stack.kie
    assert [t.model for t in kie.tasks.values()] == ["kling-3.0/video", "nano-banana-2", "recraft/remove-background"]
    kling, banana, tool = kie.tasks.values()
    assert kling.input["duration"] == "8" and kling.input["mode"] == "std" and kling.input["multi_shots"] is False
    assert len(banana.input["image_input"]) == 1 and banana.input["aspect_ratio"] == "auto"
    assert set(tool.input) == {"image"}
