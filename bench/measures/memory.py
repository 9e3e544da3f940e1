"""Memory per send: the RSS the bot adds while the deliverer sends stored video results — one
45 MB file, then 8 of them at once, then one 200 MB file (over Telegram's 50 MB upload limit, so
it goes as a link). Each case runs in a freshly started bot: baseline RSS once it is ready and
idle, then the peak (sampled every 10 ms from /proc) until the rows are marked delivered.

The rows are seeded `succeeded` (stored file in MEDIA_DIR) before the bot starts, for users
marked blocked (the deliverer skips them); a case starts by unblocking its users together."""

from __future__ import annotations

import asyncio

from ..context import Context
from ..procs import RssPeak, rss_mb
from ..report import Figure, Goal
from ..seed import delivered, each, succeeded_video, users
from ..world import World

NAME = "memory"
FIRST_USER = 600_000
MB = 1 << 20
CASES = (  # (name, files, size, goal in MB)
    ("RSS added, one 45 MB video", 1, 45 * MB, 32),
    ("RSS added, 8 × 45 MB at once", 8, 45 * MB, 150),
    ("RSS added, one 200 MB (link)", 1, 200 * MB, 32),
)
SETTLE_S = 2.0  # let start-up work (first job passes) finish before the baseline
DELIVERY_TIMEOUT_S = 180.0


async def run(ctx: Context) -> list[Figure]:
    figures = []
    async with World(ctx.run_dir("memory"), ctx.options) as world:
        repo = world.repo
        total = sum(count for _, count, _, _ in CASES)
        await world.tg.create_users(FIRST_USER, total)
        await users(repo, list(range(FIRST_USER, FIRST_USER + total)))
        plan, next_user = [], FIRST_USER
        for name, count, size, goal in CASES:
            uids = list(range(next_user, next_user + count))
            next_user += count
            await each(uids, lambda uid: repo.set_blocked(uid, True))
            gids = [await succeeded_video(repo, world.media_dir, uid, size) for uid in uids]
            plan.append((name, uids, gids, goal))
        for name, uids, gids, goal in plan:
            await world.start_bot()
            await asyncio.sleep(SETTLE_S)
            baseline = rss_mb(world.bot_pid)
            with RssPeak(world.bot_pid) as peak:
                await each(uids, lambda uid: repo.set_blocked(uid, False))
                done = await _wait_delivered(repo, gids)
            await world.stop_bot()
            if done < len(gids):
                figures.append(Figure(name, None, "MB", goal=Goal("<", goal, "MB"),
                                      error=f"{done}/{len(gids)} delivered in {DELIVERY_TIMEOUT_S:.0f} s"))
            else:
                figures.append(Figure(name, peak.peak - baseline, "MB", goal=Goal("<", goal, "MB"),
                                      note=f"baseline {baseline:.0f} MB"))
        figures.append(Figure("error lines in bot log", world.bot_errors(), "", goal=Goal("==", 0)))
    return figures


async def _wait_delivered(repo, gids: list[int]) -> int:
    loop = asyncio.get_running_loop()
    end = loop.time() + DELIVERY_TIMEOUT_S
    while True:
        done = await delivered(repo, gids)
        if done >= len(gids) or loop.time() > end:
            return done
        await asyncio.sleep(0.1)
