"""KIE callback answered: N valid callbacks (the bot's own per-generation token, made with the
run's KIE_CALLBACK_SECRET) posted by the driver at once to N seeded `generating` rows whose tasks
the emulator has finished; p50/p99 of the HTTP answer time. Then N more while they trickle in at
20/s (one every 50 ms).

Measured twice: against one `kiebot run` (role all: the same loop also stores and delivers what
the callbacks finished), then against `--role web` with a `--role worker` beside it on the same
database (README "Running several processes"), where the web process only answers HTTP.

The driver is bench/http_burst.py (pre-opened keep-alive connections, each request timed from its
write; it says why), and the same burst and trickle first go to a bare aiohttp server
(bench/floor_server.py) so each figure prints beside the floor this machine sets."""

from __future__ import annotations

import math
import statistics

from ..context import Context
from ..http_burst import post_all as post_calls
from ..procs import start_child, stop_child
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


async def post_all(calls: list[tuple[str, dict]], *, gap: float = 0.0) -> list[float]:
    """Answer times in ms. A non-2xx answer fails the measure: the latency of a refusal is not
    the figure."""
    answers = await post_calls(calls, gap=gap)
    refused = [a.status for a in answers if a.status >= 300]
    if refused:
        raise RuntimeError(f"{len(refused)} callbacks answered {refused[0]}")
    return [a.ms for a in answers]


async def floor(ctx: Context, calls: list[tuple[str, dict]], n: int) -> tuple[list[float], list[float]]:
    """The same burst and trickle against a bare aiohttp server on the same machine."""
    proc, url = await start_child(["-m", "bench.floor_server"], log=ctx.run_dir("callbacks-floor") / "floor.log")
    try:
        base = calls[0][0].split("/kie/")[0]
        moved = [(url + u[len(base):], body) for u, body in calls]
        return await post_all(moved[:n]), await post_all(moved[n:], gap=1 / TRICKLE_RATE)
    finally:
        await stop_child(proc)


async def answer_times(ctx: Context, topology: str) -> tuple[list[float], list[float], int,
                                                              tuple[list[float], list[float]] | None]:
    """Burst and trickle against kiebot in one topology: "all" (one `kiebot run`) or
    "web+worker" (`--role web` answers HTTP, a `--role worker` beside it runs the stages)."""
    n = ctx.chats
    async with World(ctx.run_dir(f"callbacks-{topology.replace('+', '-')}"), ctx.options) as world:
        user_ids = list(range(FIRST_USER, FIRST_USER + 2 * n))
        await world.tg.create_users(FIRST_USER, 2 * n)
        gids, task_ids = await generating_rows(world, user_ids, callbacks=False, poll_in=POLL_AFTER_S)
        await world.kie.finish()
        bodies = await world.kie.callback_bodies(task_ids)
        calls = [(world.callback_url(g), bodies[t]) for g, t in zip(gids, task_ids)]
        floors = await floor(ctx, calls, n) if topology == "all" else None
        if topology == "all":
            await world.start_bot()
        else:
            await world.start_bot(role="web")
            await world.start_worker()
        burst = await post_all(calls[:n])
        trickle = await post_all(calls[n:], gap=1 / TRICKLE_RATE)
        return burst, trickle, world.bot_errors(), floors


async def run(ctx: Context) -> list[Figure]:
    n = ctx.chats
    burst, trickle, errors, floors = await answer_times(ctx, "all")
    assert floors is not None
    floor_burst, floor_trickle = floors
    split_burst, split_trickle, split_errors, _ = await answer_times(ctx, "web+worker")
    return [
        Figure("callback p50, all at once", statistics.median(burst), "ms",
               note=f"{n} callbacks; bare aiohttp {statistics.median(floor_burst):.1f} ms"),
        Figure("callback p99, all at once", percentile(burst, 99), "ms", goal=Goal("<", 50, "ms"),
               note=f"bare aiohttp {percentile(floor_burst, 99):.1f} ms"),
        Figure("callback p50, trickling 20/s", statistics.median(trickle), "ms",
               note=f"bare aiohttp {statistics.median(floor_trickle):.1f} ms"),
        Figure("callback p99, trickling 20/s", percentile(trickle, 99), "ms", goal=Goal("<", 50, "ms"),
               note=f"bare aiohttp {percentile(floor_trickle, 99):.1f} ms"),
        Figure("web+worker: callback p99, all at once", percentile(split_burst, 99), "ms",
               goal=Goal("<", 50, "ms"), note=f"p50 {statistics.median(split_burst):.1f} ms"),
        Figure("web+worker: callback p99, trickling 20/s", percentile(split_trickle, 99), "ms",
               goal=Goal("<", 50, "ms"), note=f"p50 {statistics.median(split_trickle):.1f} ms"),
        Figure("error lines in bot log", errors + split_errors, "", goal=Goal("==", 0)),
    ]
