"""Every wrong input gets its reason and the same step again, in both languages."""

from __future__ import annotations

import pytest

from tests.e2e.conversation.conftest import click, png_bytes, seen

MB = 1024 * 1024


async def _to_photo_step(user, lang):
    videos, cont = {"en": ("🎞 Animate a photo", "Continue · 30⭐"), "ru": ("🎞 Оживить фото", "Далее · 30⭐")}[lang]
    await user.send_command("/start")
    await click(user, videos)
    await click(user, "Bytedance V1 Pro · 30⭐")
    await click(user, cont)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_photo_step_rejects_everything_but_an_image(stack, lang):
    webhook_stack = stack  # both stacks: webhook and long polling
    uid = 1000 + (lang == "ru")
    user = webhook_stack.telegram.user(uid, first_name="Pat", language_code=lang)
    ask = {"en": "Send a photo for Bytedance V1 Pro", "ru": "Пришлите фото для Bytedance V1 Pro"}[lang]
    expected = {
        "en": ["Stickers can't be used here", "Videos can't be used", "I need a photo at this step",
               "This file is 11.0 MB, the limit is 10 MB", "This file type (application/pdf)"],
        "ru": ["Стикер здесь не подойдёт", "Видео не подходит", "На этом шаге нужно фото",
               "Файл весит 11,0 МБ", "Этот тип файла (application/pdf)"],
    }[lang]
    await _to_photo_step(user, lang)
    await seen(user, ask)
    actions = [
        user.send_sticker,
        lambda: user.send_video(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64),
        lambda: user.send_text("here is my idea"),
        lambda: user.send_document(b"\x89PNG\r\n\x1a\n" + b"\x00" * (11 * MB), "big.png", "image/png"),
        lambda: user.send_document(b"%PDF-1.4 hello", "doc.pdf", "application/pdf"),
    ]
    for action, text in zip(actions, expected):
        await action()
        reply = await user.wait_for_message()
        assert text in reply.text, reply.text
        assert ask in reply.text  # the same question again
        assert len(reply.buttons[0]) == 2  # Back and Cancel
    await user.send_document(png_bytes(), "me.png", "image/png")
    reply = await user.wait_for_message()
    assert {"en": "Photo received", "ru": "Фото получено"}[lang] in reply.text
    assert await webhook_stack.app.accounts.balance(uid) == 50


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_prompt_step_rejects_bad_prompts(stack, lang):
    webhook_stack = stack  # both stacks: webhook and long polling
    uid = 2000 + (lang == "ru")
    user = webhook_stack.telegram.user(uid, first_name="Pat", language_code=lang)
    images, cont, ask = {"en": ("🎨 Create an image", "Continue · 8⭐", "Describe what you want"),
                         "ru": ("🎨 Создать картинку", "Далее · 8⭐", "Опишите, что хотите")}[lang]
    await user.send_command("/start")
    await click(user, images)
    await click(user, "Seedream 4.5 · 8⭐")
    await click(user, cont)
    await seen(user, ask)
    expected = {
        "en": ["Please send the prompt as a text message", "too long: 3001 characters, the limit is 3000",
               "too short: 0 characters"],
        "ru": ["пришлите описание текстом", "слишком длинное: 3001 символ, максимум 3000",
               "слишком короткое: 0 символов, минимум 1"],
    }[lang]
    for action, text in zip([user.send_sticker, lambda: user.send_text("x" * 3001),
                             lambda: user.send_text("   ")], expected):
        await action()
        reply = await user.wait_for_message()
        assert text in reply.text, reply.text
        assert ask in reply.text
    await user.send_text("a good prompt")
    card = await user.wait_for_message()
    assert "a good prompt" in card.text


async def test_minimum_prompt_length_comes_from_the_catalog(webhook_stack):
    user = webhook_stack.telegram.user(2100, first_name="Pat", language_code="en")
    await user.send_command("/start")
    await click(user, "🎨 Create an image")
    await click(user, "FLUX.2 Pro · 12⭐")
    await click(user, "Continue · 12⭐")
    await seen(user, "(3–5000 characters)")
    await user.send_text("ab")
    reply = await user.wait_for_message()
    assert "too short: 2 characters, the minimum is 3" in reply.text
