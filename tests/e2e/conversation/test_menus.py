"""Stale and tampered buttons, unknown commands, unexpected updates, /lang, command menus,
and a mid-flow state surviving a restart with Redis."""

from __future__ import annotations

import uuid

from testkit.stack import LocalStack
from tests.e2e.conversation.conftest import ADMIN_ID, click, seen, start_image_flow


async def test_stale_and_tampered_buttons_get_a_fresh_menu(stack):
    ann = stack.telegram.user(5000, first_name="Ann", language_code="en")
    await start_image_flow(ann)
    old_card = await seen(ann, "Ready to generate")
    await click(ann, "🔄 Model")  # the card becomes the picker…
    await click(ann, "FLUX.2 Pro · 12⭐")  # …and a new draft starts
    await ann.send_command("/start")
    await seen(ann, "Pick a section")
    await click(ann, "🎨 Create an image")
    await click(ann, "Seedream 4.5 · 8⭐")
    options_screen = await seen(ann, "Tap an option")
    # A button of the earlier draft: rewrite it to carry that draft's number (as an old card would).
    stored = next(m for m in ann.chat.live() if m.message_id == options_screen.message_id)
    button = stored.message["reply_markup"]["inline_keyboard"][0][0]
    parts = button["callback_data"].split(":")
    button["callback_data"] = ":".join([parts[0], "1", *parts[2:]])
    answer = await ann.tap(button["text"], options_screen)
    assert answer.answered and answer.text == "This menu has expired. Here is a fresh one."
    fresh = await seen(ann, "This menu has expired")
    assert fresh.buttons[0] == ["🎨 Create an image", "🖌 Edit a photo"]
    # Tampered data that no factory can parse.
    button["callback_data"] = "o:zz:!"
    answer = await ann.tap(button["text"], options_screen)
    assert answer.answered and "expired" in answer.text
    assert "Generate · 8⭐" in old_card.buttons[0]
    assert await stack.app.accounts.balance(5000) == 50  # nothing stale was charged
    assert all(a.answered for a in ann.callback_answers)


async def test_unknown_commands_and_unexpected_messages_get_a_hint(webhook_stack):
    ann = webhook_stack.telegram.user(5100, first_name="Ann", language_code="en")
    ivan = webhook_stack.telegram.user(5101, first_name="Иван", language_code="uk")
    await ann.send_command("/frobnicate")
    assert (await ann.wait_for_message()).text == "I don't know this command. Try /start or /help."
    await ivan.send_command("/frobnicate")
    assert "Я не знаю такой команды" in (await ivan.wait_for_message()).text
    await ann.send_sticker()
    reply = await ann.wait_for_message()
    assert "I can't use this here" in reply.text and reply.buttons
    await ann.send_command("/help")
    assert "How it works" in (await ann.wait_for_message()).text


async def test_lang_switches_and_is_remembered(webhook_stack):
    ann = webhook_stack.telegram.user(5200, first_name="Ann", language_code="en")
    await ann.send_command("/lang")
    await click(ann, "🇷🇺 Русский")
    await seen(ann, "Язык: русский")
    await ann.send_command("/balance")
    await seen(ann, "Баланс: 50⭐")
    assert (await webhook_stack.app.accounts.get_user(5200)).language == "ru"
    await ann.send_command("/lang")
    await click(ann, "🇬🇧 English")
    await seen(ann, "Language: English")


async def test_commands_are_registered_in_both_languages(webhook_stack):
    calls = [c for c in webhook_stack.telegram.calls if c.method == "setMyCommands"]
    everyone = [c for c in calls if "scope" not in c.params]
    by_lang = {c.params.get("language_code"): c.params["commands"] for c in everyone}
    assert set(by_lang) == {None, "ru"}
    assert {"command": "start", "description": "Main menu"} in by_lang[None]
    assert {"command": "start", "description": "Главное меню"} in by_lang["ru"]
    assert [c["command"] for c in by_lang[None]] == [c["command"] for c in by_lang["ru"]]
    assert "credit" not in [c["command"] for c in by_lang[None]]
    assert {"command": "templates", "description": "Photo templates"} in by_lang[None]
    assert {"command": "templates", "description": "Фото-шаблоны"} in by_lang["ru"]
    # The admin's own chat has a menu with the admin commands as well.
    admin = {c.params.get("language_code"): c.params["commands"] for c in calls
             if c.params.get("scope", {}).get("type") == "chat"
             and c.params["scope"].get("chat_id") == ADMIN_ID}
    assert set(admin) == {None, "ru"}
    assert [c["command"] for c in admin[None]][-13:] == [
        "credit", "user", "stats", "refund", "ledgercheck", "selftest", "models", "ban", "unban",
        "promo_new", "promos", "promo_off", "broadcast"]
    assert {"command": "refund", "description": "Админ: вернуть платёж в Stars"} in admin["ru"]


async def test_mid_flow_state_survives_a_restart_with_redis(tmp_path, redis_url):
    uid = 6_000_000 + uuid.uuid4().int % 1_000_000  # Redis is shared: a fresh chat key
    async with LocalStack(tmp_path, settings={"ADMIN_IDS": str(ADMIN_ID), "SIGNUP_BONUS": "50",
                                              "REDIS_URL": redis_url}) as stack:
        ann = stack.telegram.user(uid, first_name="Ann", language_code="en")
        await ann.send_command("/start")
        await click(ann, "🎨 Create an image")
        await click(ann, "Seedream 4.5 · 8⭐")
        await click(ann, "Aspect ratio: 1:1 ▸")
        await click(ann, "9:16")
        await click(ann, "Continue · 8⭐")
        await seen(ann, "Describe")
        await stack.restart()
        await ann.send_text("a castle in the clouds")
        card = await seen(ann, "Ready to generate")
        assert "Aspect ratio: 9:16" in card.text and "a castle in the clouds" in card.text
        await click(ann, "Generate · 8⭐")
        await ann.wait_until(lambda t: any(e.media for e in t), timeout=20)
        await stack.app.dispatcher.storage.redis.delete(*[
            k async for k in stack.app.dispatcher.storage.redis.scan_iter(f"*{uid}*")] or ["none"])


async def test_deep_link_payload_is_kept_for_later(webhook_stack):
    from aiogram.fsm.storage.base import StorageKey

    ann = webhook_stack.telegram.user(5300, first_name="Ann", language_code="en")
    await ann.send_command("/start", "promo42")
    await seen(ann, "Pick a section")
    await ann.send_command("/start", "other")
    await ann.wait_for_message()
    app = webhook_stack.app
    key = StorageKey(bot_id=app.bot.id, chat_id=5300, user_id=5300)
    assert (await app.dispatcher.storage.get_data(key))["start_payload"] == "promo42"
