"""Fixtures: a started FakeTelegram and an aiogram Bot whose own session points at it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from testkit.telegram import FakeTelegram

TOKEN = "123456:TEST-token"


def make_bot(fake: FakeTelegram, token: str = TOKEN) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, flood_control=False, webhook_backoff=(0.01, 0.05)) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    bot = make_bot(fake)
    yield bot
    await bot.session.close()


@contextlib.asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot) -> AsyncIterator[asyncio.Task]:
    """Run dp.start_polling in a task and stop it afterwards."""
    task = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False,
                                                close_bot_session=False))
    try:
        yield task
    finally:
        if not task.done():
            with contextlib.suppress(RuntimeError):
                await dp.stop_polling()
        await asyncio.wait_for(task, 10)
