"""KIE callback answered: N valid callbacks (the bot's own per-generation token, made with the
run's KIE_CALLBACK_SECRET) posted by the driver at once to N seeded `generating` rows whose tasks
the emulator has finished; p50/p99 of the HTTP answer time. Then N more while they trickle in at
20/s (one every 50 ms)."""

from __future__ import annotations

import asyncio
import math
import statistics
import time

import aiohttp

from ..context import Context
from ..report import Figure, Goal
from ..seed import generating_rows
from ..world import World

NAME = "callbacks"
FIRST_USER = 500_000
TRICKLE_RATE = 20.0
POLL_AFTER_S = 600.0  # webhook mode: nothing polls these rows while the callbacks are measured


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def post_all(http: aiohttp.ClientSession, calls: list[tuple[str, dict]], *, gap: float = 0.0
                   ) -> list[float]:
    """POST each (url, body), all at once (gap 0) or one every `gap` s; answer times in ms.
    A non-2xx answer fails the measure: the latency of a refusal is not the figure."""
    async def one(i: int, url: str, body: dict) -> float:
        if gap:
            await asyncio.sleep(i * gap)
        started = time.perf_counter()
        async with http.post(url, json=body) as resp:
            await resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"callback answered {resp.status}")
        return 1000 * (time.perf_counter() - started)

    return list(await asyncio.gather(*(one(i, url, body) for i, (url, body) in enumerate(calls))))


async def run(ctx: Context) -> list[Figure]:
    n = ctx.chats
    async with World(ctx.run_dir("callbacks"), ctx.options) as world:
        user_ids = list(range(FIRST_USER, FIRST_USER + 2 * n))
        await world.tg.create_users(FIRST_USER, 2 * n)
        gids, task_ids = await generating_rows(world, user_ids, callbacks=False, poll_in=POLL_AFTER_S)
        await world.kie.finish()
        bodies = await world.kie.callback_bodies(task_ids)
        calls = [(world.callback_url(g), bodies[t]) for g, t in zip(gids, task_ids)]
        await world.start_bot()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            burst = await post_all(http, calls[:n])
            trickle = await post_all(http, calls[n:], gap=1 / TRICKLE_RATE)
        errors = world.bot_errors()
    return [
        Figure("callback p50, all at once", statistics.median(burst), "ms", note=f"{n} callbacks"),
        Figure("callback p99, all at once", percentile(burst, 99), "ms", goal=Goal("<", 50, "ms")),
        Figure("callback p50, trickling 20/s", statistics.median(trickle), "ms"),
        Figure("callback p99, trickling 20/s", percentile(trickle, 99), "ms", goal=Goal("<", 50, "ms")),
        Figure("error lines in bot log", errors, "", goal=Goal("==", 0)),
    ]
