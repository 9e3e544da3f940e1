"""Flood control like Telegram's: ~1 message/s per chat (burst 3), 30/s overall."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import TelegramRetryAfter

from testkit.telegram import FakeTelegram
from testkit.telegram.flood import FloodControl, counted

from .conftest import TOKEN, make_bot


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_chat_bucket_allows_a_burst_then_one_per_second() -> None:
    clock = Clock()
    flood = FloodControl(clock=clock)
    assert [flood.take(1) for _ in range(3)] == [None, None, None]
    assert flood.take(1) == 1
    assert flood.take(2) is None  # another chat has its own bucket
    clock.now += 1.0
    assert flood.take(1) is None and flood.take(1) == 1
    assert flood.take(1, cost=3) == 3  # a 3-item album needs 3 tokens


def test_global_limit_of_30_per_second() -> None:
    clock = Clock()
    flood = FloodControl(clock=clock)
    assert all(flood.take(chat) is None for chat in range(30))
    assert flood.take(31) == 1
    clock.now += 0.5
    assert sum(flood.take(100 + chat) is None for chat in range(20)) == 15


def test_which_methods_count() -> None:
    assert counted("sendMessage") and counted("sendPhoto") and counted("copyMessage") and counted("forwardMessages")
    assert not counted("sendChatAction") and not counted("editMessageText") and not counted("getMe")


async def test_forty_messages_in_a_second_are_refused_past_the_limit() -> None:
    clock = Clock()  # frozen: all 40 land within the same second however slow the machine is
    async with FakeTelegram(token=TOKEN, flood_control=True, clock=clock) as fake:
        fake.user(5)
        bot = make_bot(fake)
        try:
            results = await asyncio.gather(*(bot.send_message(5, f"m{i}") for i in range(40)),
                                           return_exceptions=True)
        finally:
            await bot.session.close()
    refused = [r for r in results if isinstance(r, TelegramRetryAfter)]
    sent = [r for r in results if not isinstance(r, Exception)]
    assert len(sent) == 3 and len(refused) == 37  # the per-chat burst, then refusals
    assert all(r.retry_after == 1 for r in refused)
    assert len(fake.flood_events) == len(refused)
    assert {e.chat_id for e in fake.flood_events} == {5}
    assert len(fake.users[5].transcript) == len(sent)


async def test_flood_control_can_be_switched_off() -> None:
    async with FakeTelegram(token=TOKEN, flood_control=False) as fake:
        fake.user(5)
        bot = make_bot(fake)
        try:
            for i in range(40):
                await bot.send_message(5, f"m{i}")
        finally:
            await bot.session.close()
    assert not fake.flood_events and len(fake.users[5].transcript) == 40


async def test_flood_storm_for_a_period(fake: FakeTelegram, bot) -> None:
    clock = Clock()
    fake.faults.clock = clock
    fake.user(6)
    fake.faults.flood_for(5.0, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(6, "x")
    assert info.value.retry_after == 3
    assert await bot.send_chat_action(6, "typing")  # not a message: not refused
    clock.now += 5.0
    assert (await bot.send_message(6, "y")).text == "y"


async def test_chat_burst_is_a_knob() -> None:
    clock = Clock()  # frozen: no token comes back during the test
    async with FakeTelegram(token=TOKEN, chat_burst=5, clock=clock) as fake:
        fake.user(5)
        bot = make_bot(fake)
        try:
            for i in range(5):
                await bot.send_message(5, f"m{i}")
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(5, "one too many")
        finally:
            await bot.session.close()
    assert [e.reason for e in fake.flood_events] == ["flood"]
