"""A real aiogram bot in polling mode performs every modelled method against the fake."""

from __future__ import annotations

from aiogram import Bot, Dispatcher

from testkit.telegram import FakeTelegram

from .conftest import polling
from .scenario import make_router, run_conversation, set_commands


async def test_conversation_in_polling_mode(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()
    dp.include_router(make_router())
    await set_commands(bot)
    async with polling(dp, bot):
        await run_conversation(fake)
    polls = [c for c in fake.calls if c.method == "getUpdates"]
    assert polls and all(c.ok for c in polls)
    assert polls[0].params["allowed_updates"] == sorted(dp.resolve_used_update_types()) or \
        set(polls[0].params["allowed_updates"]) == set(dp.resolve_used_update_types())
    assert not fake.flood_events
    assert fake.calls[0].method == "setMyCommands" and "getMe" in {c.method for c in fake.calls}
