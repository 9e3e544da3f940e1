"""getUpdates as the official server: blocking long poll, offsets, 409s, allowed_updates, clamp."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramConflictError

from testkit.telegram import FakeTelegram


async def started_poll(fake: FakeTelegram, bot: Bot, **kwargs) -> asyncio.Task:
    before = fake.updates.polls
    task = asyncio.create_task(bot.get_updates(**kwargs))
    await fake.notifier.wait_for(lambda: fake.updates.polls > before, 5, "getUpdates to arrive")
    return task


async def test_long_poll_blocks_until_an_update(fake: FakeTelegram, bot: Bot) -> None:
    task = await started_poll(fake, bot, timeout=30)
    assert not task.done()
    await fake.user(1).send_text("wake up")
    updates = await asyncio.wait_for(task, 5)
    assert [u.message.text for u in updates] == ["wake up"]


async def test_timeout_is_clamped_to_50(fake: FakeTelegram, bot: Bot) -> None:
    task = await started_poll(fake, bot, timeout=120, request_timeout=200)
    assert fake.updates.last_timeout == 50
    await fake.user(1).send_text("x")
    await asyncio.wait_for(task, 5)
    assert await bot.get_updates(timeout=0, offset=-1)
    assert fake.updates.last_timeout == 0


async def test_offsets_confirm_and_negative_offset_keeps_the_tail(fake: FakeTelegram, bot: Bot) -> None:
    user = fake.user(1)
    for text in ("a", "b", "c", "d"):
        await user.send_text(text)
    first = await bot.get_updates(timeout=0, limit=2)
    assert [u.message.text for u in first] == ["a", "b"]
    rest = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in rest] == ["c", "d"]
    again = await bot.get_updates(timeout=0)  # unconfirmed updates come back
    assert [u.message.text for u in again] == ["c", "d"]
    tail = await bot.get_updates(offset=-1, timeout=0)
    assert [u.message.text for u in tail] == ["d"]
    assert [u.message.text for u in await bot.get_updates(timeout=0)] == ["d"]


async def test_concurrent_get_updates_ends_the_first_with_409(fake: FakeTelegram, bot: Bot) -> None:
    first = await started_poll(fake, bot, timeout=30)
    second = asyncio.create_task(bot.get_updates(timeout=0))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 5)
    assert await second == []


async def test_get_updates_refused_while_webhook_is_set(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook("http://127.0.0.1:9/hook")
    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates(timeout=0)
    assert (await bot.get_webhook_info()).url == "http://127.0.0.1:9/hook"
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates(timeout=0) == []


async def test_allowed_updates_filter(fake: FakeTelegram, bot: Bot) -> None:
    user = fake.user(1)
    await user.send_text("dropped")
    assert await bot.get_updates(timeout=0, allowed_updates=["my_chat_member"]) == []
    user.block()
    updates = await bot.get_updates(timeout=0)  # the previous setting is kept
    assert [u.my_chat_member.new_chat_member.status for u in updates] == ["kicked"]


async def test_set_webhook_descriptions(fake: FakeTelegram) -> None:
    assert (await fake.call("setWebhook", {"url": "http://127.0.0.1:9/h"}))[1]["description"] == "Webhook was set"
    assert (await fake.call("setWebhook", {"url": "http://127.0.0.1:9/h"}))[1]["description"] == \
        "Webhook is already set"
    status, body, _ = await fake.call("setWebhook", {"url": "http://127.0.0.1:9/h", "secret_token": "bad token!"})
    assert status == 400
    assert (await fake.call("deleteWebhook", {}))[1]["description"] == "Webhook was deleted"
    assert (await fake.call("deleteWebhook", {}))[1]["description"] == "Webhook is already deleted"
