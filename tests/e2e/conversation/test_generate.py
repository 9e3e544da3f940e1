"""Generating: picker, options, prompt, card, result buttons, double tap, shortfall, cancel."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conversation.conftest import (
    balance,
    click,
    has_button,
    ledger,
    png_bytes,
    seen,
    start_image_flow,
    wait_media,
)


@pytest.mark.both_transports
async def test_image_flow_with_options_and_result_buttons(stack):
    ann = stack.telegram.user(111, first_name="Ann", language_code="en")
    generate = await start_image_flow(ann)
    card = await seen(ann, "Ready to generate")
    assert "Aspect ratio: 16:9 · Quality: standard (2K)" in card.text
    assert "Prompt: a lighthouse at dusk" in card.text and "Balance: 50⭐" in card.text
    await click(ann, generate)
    [result] = await wait_media(ann, 1)
    assert result.media[0].kind == "photo" and result.media[0].data
    assert result.buttons[0] == ["🔁 Again · 8⭐", "📎 Original file"]
    assert result.buttons[1][1].startswith("🎬 Animate · from ")  # all: test_followups.py
    assert "a lighthouse at dusk" in result.text
    assert await ledger(stack, 111) == [("signup_bonus", 50), ("spend", -8)]
    # The options screen was one message edited in place: no message per tap.
    assert sum(1 for e in ann.transcript if e.from_bot and "Tap an option" in e.text) <= 1

    await click(ann, "📎 Original file")
    doc = await ann.wait_until(lambda t: next((e for e in t if e.kind == "document"), None))
    [g], _ = await stack.app.generations.library(user_id=111, page=0, page_size=5)
    original = await stack.app.generations.pipeline.media.read(g.stored_paths[0])
    assert doc.media[0].data == original

    await click(ann, "🔁 Again · 8⭐")
    again_card = await seen(ann, "Ready to generate")
    assert "16:9" in again_card.text and "a lighthouse at dusk" in again_card.text
    await ann.tap("Generate · 8⭐", again_card)
    await wait_media(ann, 3)  # photo, document, second photo
    assert await balance(stack, 111) == 34


async def test_russian_user_sees_russian(webhook_stack):
    ivan = webhook_stack.telegram.user(222, first_name="Иван", language_code="ru")
    await ivan.send_command("/start")
    welcome = await seen(ivan, "Привет, Иван")
    assert "Подарок: на ваш баланс начислено 50⭐" in welcome.text
    assert welcome.buttons[0] == ["🎨 Создать картинку", "🖌 Изменить фото"]
    generate = await start_image_flow(ivan, "ru", "кот в космосе")
    card = await seen(ivan, "Всё готово")
    assert "Формат: 16:9 · Качество: стандарт (2K)" in card.text and "Баланс: 50⭐" in card.text
    await click(ivan, generate)
    [result] = await wait_media(ivan, 1)
    assert result.buttons[0] == ["🔁 Ещё раз · 8⭐", "📎 Исходный файл"]
    texts = "\n".join(e.text for e in ivan.transcript if e.from_bot)
    assert "Balance" not in texts and "Generate" not in texts


async def test_double_tap_on_generate_charges_once(stack):
    webhook_stack = stack  # both stacks: webhook and long polling
    ann = webhook_stack.telegram.user(333, first_name="Ann", language_code="en")
    generate = await start_image_flow(ann)
    answers = await asyncio.gather(ann.tap(generate), ann.tap(generate))
    assert all(a.answered for a in answers)
    await wait_media(ann, 1)
    await webhook_stack.settle()  # taps handled, more passes run: would a second run arrive?
    assert len([e for e in ann.transcript if e.from_bot and e.media]) == 1
    assert await ledger(webhook_stack, 333) == [("signup_bonus", 50), ("spend", -8)]
    items, total = await webhook_stack.app.generations.library(user_id=333, page=0, page_size=10)
    assert total == 1


SHORT = {
    "en": ("Balance: 50⭐", "Not enough ⭐", "this costs 8⭐, you have 3⭐", "at least 5⭐", "💳 Top up",
           "Choose a pack"),
    "ru": ("Баланс: 50⭐", "Не хватает ⭐", "стоимость 8⭐, у вас 3⭐", "хотя бы на 5⭐", "💳 Пополнить",
           "Выберите пакет"),
}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_short_balance_shows_shortfall_and_top_up(stack, lang):
    t = SHORT[lang]
    ann = stack.telegram.user(444, first_name="Ann", language_code=lang)
    await ann.send_command("/start")
    await seen(ann, t[0])
    await stack.app.accounts.admin_credit("444", "=3", admin_id=1)
    generate = await start_image_flow(ann, lang)
    card = await seen(ann, t[1])
    assert t[2] in card.text and t[3] in card.text
    assert has_button(t[4])(ann.transcript)
    await ann.tap(generate)
    assert await balance(stack, 444) == 3
    assert (await stack.app.generations.library(user_id=444, page=0, page_size=5))[1] == 0
    await click(ann, t[4])
    await seen(ann, t[5])


CANCEL = {
    "en": ("waiting in line", "✖ Cancel", "Cancelled. 8⭐ returned to your balance."),
    "ru": ("в очереди", "✖ Отмена", "Отменено. На баланс возвращено 8⭐."),
}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_cancel_while_queued_refunds(stack, lang):
    t = CANCEL[lang]
    ann = stack.telegram.user(555, first_name="Ann", language_code=lang)
    generate = await start_image_flow(ann, lang)
    await stack.app.jobs.stop()  # nothing submits: the generation waits in line
    stack.app.generations.pipeline.kick = lambda stage: None
    await click(ann, generate)
    await seen(ann, t[0])
    await click(ann, t[1])
    await seen(ann, t[2])
    assert await ledger(stack, 555) == [("signup_bonus", 50), ("spend", -8), ("refund", 8)]


@pytest.mark.both_transports
async def test_i2v_with_photo_then_animate_an_older_result_uses_only_that_result(stack):
    ann = stack.telegram.user(666, first_name="Ann", language_code="en")
    await stack.app.accounts.register(666, language_code="en")
    await stack.app.accounts.admin_credit("666", "=200", admin_id=1)
    # R1: an image result, made before the i2v draft below.
    await start_image_flow(ann, prompt="a quiet harbour")
    await click(ann, "Generate · 8⭐")
    [r1_message] = await wait_media(ann, 1)

    await ann.send_command("/start")
    await click(ann, "🎞 Animate a photo")
    await click(ann, "Bytedance V1 Pro · 30⭐")
    await click(ann, "Continue · 30⭐")
    await seen(ann, "Send a photo for Bytedance V1 Pro")
    photo = png_bytes(48)
    await ann.send_photo(photo, caption="the waves start moving")
    card = await seen(ann, "Ready to generate")
    assert "Photo: ✅ attached" in card.text and "the waves start moving" in card.text
    await click(ann, "Generate · 30⭐")
    media = await wait_media(ann, 2)
    assert media[-1].media[0].kind == "video"
    assert media[-1].buttons == [["🔁 Again · 30⭐", "📎 Original file"]]  # no Animate for videos

    # Animate R1: a fresh draft whose only source is R1 (not the photo, not the old prompt).
    animate = next(b for row in r1_message.buttons for b in row if b.startswith("🎬 Animate"))
    await ann.tap(animate, r1_message)
    await seen(ann, "animate this image")
    await click(ann, "Kling 2.6 Animate · 25⭐")
    await click(ann, "Continue · 25⭐")
    ask = await seen(ann, "Describe")
    assert "waves" not in ask.text
    await ann.send_text("boats rocking gently")
    card = await seen(ann, "Source: your result #")
    assert "Photo: ✅" not in card.text and "waves" not in card.text
    assert "Prompt: boats rocking gently" in card.text
    await click(ann, "Generate · 25⭐")
    media = await wait_media(ann, 3)
    assert media[-1].media[0].kind == "video"
    assert await balance(stack, 666) == 200 - 8 - 30 - 25

    items, _ = await stack.app.generations.library(user_id=666, page=0, page_size=5)
    animated, i2v, r1 = items
    assert animated.model_key != i2v.model_key
    media_store = stack.app.generations.pipeline.media
    source = await media_store.read(animated.options["_source_path"])
    assert source == await media_store.read(r1.stored_paths[0])
    assert source != photo and source != await media_store.read(i2v.options["_source_path"])


async def test_prompt_typed_from_main_menu_offers_last_model(webhook_stack):
    ann = webhook_stack.telegram.user(777, first_name="Ann", language_code="en")
    await ann.send_command("/start")
    await seen(ann, "Pick a section")
    await ann.send_text("a red bicycle")
    card = await seen(ann, "Ready to generate")
    assert "Model: Nano Banana 2" in card.text  # no history yet: the first image model
    await click(ann, "🔄 Model")
    await click(ann, "FLUX.2 Pro · 12⭐")
    await click(ann, "Resolution: 1K ▸")
    await click(ann, "2K")
    await seen(ann, "Price: 17⭐")
    await click(ann, "Continue · 17⭐")
    card = await seen(ann, "Model: FLUX.2 Pro")
    assert "a red bicycle" in card.text  # the prompt survived the model change
    await click(ann, "Generate · 17⭐")
    await wait_media(ann, 1)
    await ann.send_text("a blue bicycle")
    card = await seen(ann, "Prompt: a blue bicycle")
    assert "Model: FLUX.2 Pro" in card.text and "Resolution: 2K" in card.text
