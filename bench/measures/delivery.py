"""Delivery: N generations in N chats finishing together. Rows `generating` with their tasks are
seeded before the bot starts (webhook mode, so KIE's callbacks are used); the emulator finishes
every task at once; rate = media sends per second at the fake (first to last), the most sends in
any 1 s window, and the 429s the fake issued."""

from __future__ import annotations

import asyncio

from ..context import Context
from ..control import MEDIA_METHODS
from ..report import Figure, Goal
from ..seed import generating_rows
from ..world import World

NAME = "delivery"
FIRST_USER = 300_000
TELEGRAM_RATE = 30.0
# Webhook mode: the first poll waits for the callback, as the submitter schedules it.
POLL_AFTER_S = 600.0


async def run(ctx: Context) -> list[Figure]:
    n = ctx.chats
    async with World(ctx.run_dir("delivery"), ctx.options) as world:
        user_ids = list(range(FIRST_USER, FIRST_USER + n))
        await world.tg.create_users(FIRST_USER, n)
        await generating_rows(world, user_ids, callbacks=True, poll_in=POLL_AFTER_S)
        await world.start_bot()
        since = (await world.tg.stats())["now"]
        await world.kie.finish()
        loop = asyncio.get_running_loop()
        end = loop.time() + n / 3 + 60  # 10× the floor n/30 s, plus start-up: ends a stall only
        while True:
            stats = await world.tg.stats(since, MEDIA_METHODS)
            if stats["calls"]["ok"] >= n or loop.time() > end:
                break
            await asyncio.sleep(0.25)
        flood = (await world.tg.stats(since))["flood"]
        errors = world.bot_errors()
    sends = stats["calls"]
    if sends["ok"] < 2:
        raise RuntimeError(f"only {sends['ok']} of {n} results delivered")
    rate = (sends["ok"] - 1) / (sends["ok_last_at"] - sends["ok_first_at"])
    return [
        Figure("delivery rate", rate, "/s", TELEGRAM_RATE, "Telegram's", Goal(">=", 90, "%"),
               f"{sends['ok']}/{n} delivered"),
        Figure("max sends in any 1 s", sends["ok_max_per_second"], "", goal=Goal("<=", TELEGRAM_RATE)),
        Figure("429 from Telegram", flood, "", goal=Goal("==", 0)),
        Figure("results not delivered", n - sends["ok"], "", goal=Goal("==", 0)),
        Figure("error lines in bot log", errors, "", goal=Goal("==", 0)),
    ]
