"""Webhook updates per second: N users each send /start, then tap one main-menu button (Balance);
rate = 2N updates / (first push → last reply seen at the fake). The same crowd against a bare
aiogram echo bot (bench/echo_bot.py) on the same fake is the reference.

The fake's global 30 sends/s limit is lifted for this measure (Telegram's real limit is for
broadcasts; replies to a crowd of different chats are not what it throttles here), so it does not
cap either bot; the per-chat limit stays."""

from __future__ import annotations

from handlers.texts import tr
from ..context import Context
from ..control import TelegramControl
from ..procs import cpu_seconds, start_child, stop_child
from ..report import Figure, Goal
from ..world import World

NAME = "updates"
FIRST_USER = 100_000
BUTTON = tr("en", "btn_balance")
APOLOGIES = (tr("en", "error_generic"), tr("ru", "error_generic"))
REPLY_METHODS = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery")
NO_LIMIT = 1e6
# A user who got no answer within this is counted as unanswered (it bounds a hang only).
STEP_TIMEOUT_S = 180.0


async def crowd(tg: TelegramControl, pid: int, fake_pid: int, users: int) -> dict:
    """Run the crowd; rate, CPU per update, how busy the fake was, and the crowd's status."""
    await tg.flood_limits(global_rate=NO_LIMIT, global_burst=NO_LIMIT)
    await tg.create_users(FIRST_USER, users)
    cpu0, fake0 = cpu_seconds(pid), cpu_seconds(fake_pid)
    run = await tg.run_crowd(FIRST_USER, users, [{"command": "/start"}, {"tap": BUTTON}],
                             timeout=STEP_TIMEOUT_S)
    status = await tg.wait_crowd(run)
    cpu, fake_cpu = cpu_seconds(pid) - cpu0, cpu_seconds(fake_pid) - fake0
    stats = await tg.wait_quiet(status["started_at"])
    replies = await tg.stats(status["started_at"], REPLY_METHODS)
    updates = 2 * users
    elapsed = (replies["calls"]["last_at"] or status["finished_at"]) - status["started_at"]
    apologies = await tg.stats(status["started_at"], ("sendMessage", "editMessageText"), APOLOGIES)
    # A fake busy near 100 % of a core caps the rate it can show: then the reference is the fake's.
    busy = 100 * fake_cpu / (status["finished_at"] - status["started_at"])
    return {"rate": updates / elapsed, "cpu_ms": 1000 * cpu / updates, "status": status, "fake_busy": busy,
            "apologies": apologies["containing"], "flood": stats["flood"]}


async def run(ctx: Context) -> list[Figure]:
    # The production job interval (the test kit's 0.25 s is for fast tests): this measure has no
    # generations, so the stages' idle claims would only be test-speed noise.
    async with World(ctx.run_dir("updates-kiebot"), ctx.options,
                     settings={"JOB_INTERVAL_SECONDS": "5"}) as world:
        pid = await world.start_bot()
        bot = await crowd(world.tg, pid, world.telegram_pid, ctx.users)
        log_errors = world.bot_errors()
    async with World(ctx.run_dir("updates-echo"), ctx.options, database=False) as world:
        env = {k: world.stack.env()[k] for k in ("BOT_TOKEN", "TELEGRAM_API_BASE_URL", "SERVER_PORT")}
        proc, _ = await start_child(["-m", "bench.echo_bot"], env={**env, "BUTTON": BUTTON},
                                    log=world.directory / "echo.log", ready=b"echo bot ready")
        try:
            echo = await crowd(world.tg, proc.pid, world.telegram_pid, ctx.users)
        finally:
            await stop_child(proc)
    unanswered = bot["status"]["failed"]
    note = f"{ctx.users} users; global 30/s send limit lifted, per-chat limit kept"
    return [
        Figure(f"updates/s {ctx.db}", bot["rate"], "", echo["rate"], "bare aiogram",
               Goal(">=", 50, "%"), note),
        Figure("cpu per update", bot["cpu_ms"], "ms", echo["cpu_ms"], "bare aiogram"),
        Figure("fake Telegram busy (echo run)", echo["fake_busy"], "% of a core",
               note="near 100: the fake, not aiogram, caps the reference"),
        Figure("users unanswered", unanswered, "", goal=Goal("==", 0),
               note="; ".join(bot["status"]["errors"][:2])),
        Figure("error replies", bot["apologies"], "", goal=Goal("==", 0), note='"Something went wrong"'),
        Figure("error lines in bot log", log_errors, "", goal=Goal("==", 0)),
    ]
