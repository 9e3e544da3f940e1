"""Polling with many pending: polling mode (no PUBLIC_BASE_URL), N `generating` rows seeded with
their tasks, which the emulator has all finished before the bot starts. recordInfo per second at
the emulator (the most in any 1 s window) and its 429s; the time from the bot's readiness until
all N are delivered vs the floor N / 10 s that 10 recordInfo/s sets; the bot's peak RSS.
Long at N = 10,000 (the floor alone is 1,000 s): `--pending` sets N."""

from __future__ import annotations

import asyncio
import time

from ..context import Context
from ..control import MEDIA_METHODS
from ..procs import RssPeak
from ..report import Figure, Goal
from ..seed import generating_rows
from ..world import World

NAME = "polling"
FIRST_USER = 1_000_000
RECORD_RATE = 10.0
RECORD = "/api/v1/jobs/recordInfo"
PROGRESS_EVERY_S = 60.0


async def run(ctx: Context) -> list[Figure]:
    n = ctx.pending
    floor = n / RECORD_RATE
    async with World(ctx.run_dir("polling"), ctx.options, webhook=False) as world:
        user_ids = list(range(FIRST_USER, FIRST_USER + n))
        await world.tg.create_users(FIRST_USER, n)
        ctx.say(f"# polling: seeding {n} generations")
        await generating_rows(world, user_ids, callbacks=False)
        await world.kie.finish()
        await world.start_bot()
        since = (await world.tg.stats())["now"]
        kie_since = (await world.kie.stats())["now"]
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        end = loop.time() + 3 * floor + 120  # ends a stall only
        shown = loop.time()
        with RssPeak(world.bot_pid, interval=0.5) as peak:
            while True:
                sent = (await world.tg.stats(since, MEDIA_METHODS))["calls"]
                if sent["ok"] >= n or loop.time() > end:
                    break
                if loop.time() - shown > PROGRESS_EVERY_S:
                    shown = loop.time()
                    ctx.say(f"# polling: {sent['ok']}/{n} delivered after {time.monotonic() - started:.0f} s")
                await asyncio.sleep(1.0)
        took = (sent["ok_last_at"] or since) - since
        records = (await world.kie.stats(kie_since))["routes"].get(RECORD) or {}
        errors = world.bot_errors()
    done = sent["ok"]
    time_fig = (Figure(f"time to deliver {n}", took, "s", floor, "floor", Goal("<=", 120, "%"))
                if done >= n else
                Figure(f"time to deliver {n}", None, "s", goal=Goal("<=", 120, "%"),
                       error=f"only {done}/{n} delivered in {3 * floor + 120:.0f} s"))
    return [
        Figure("recordInfo max in any 1 s", records.get("max_per_second", 0), "", goal=Goal("<=", 10),
               note=f"{records.get('count', 0)} calls"),
        Figure("recordInfo 429 from KIE", records.get("rate_limited", 0), "", goal=Goal("==", 0)),
        time_fig,
        Figure(f"RSS peak, {n} pending", peak.peak, "MB", goal=Goal("<", 300, "MB")),
        Figure("error lines in bot log", errors, "", goal=Goal("==", 0)),
    ]
