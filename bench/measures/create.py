"""createTask pace: N users (signup bonus covers the price) each prepare a draft through the chat
(model pick + prompt), then all tap Generate within a second; from the emulator's createTask
log, rate = (n-1)/(last-first) of the accepted creates vs KIE's 20 per 10 s (2/s), and the 429s
the emulator answered."""

from __future__ import annotations

import asyncio

from handlers.texts import tr
from kie_client.catalog import Catalog
from ..context import Context
from ..report import Figure, Goal
from ..seed import IMAGE_MODEL, PROMPT
from ..world import World

NAME = "create"
FIRST_USER = 200_000
KIE_RATE = 2.0  # 20 createTask per rolling 10 s
STEP_TIMEOUT_S = 180.0
CREATE = "/api/v1/jobs/createTask"


def draft_steps() -> tuple[list[dict[str, str]], str]:
    catalog = Catalog()
    spec = catalog.get(IMAGE_MODEL)
    price = catalog.price(IMAGE_MODEL, catalog.defaults(IMAGE_MODEL))
    steps = [{"command": "/start"}, {"tap": tr("en", "job_create_image")},
             {"tap": tr("en", "model_button", name=spec.name, price=price)},
             {"tap": tr("en", "btn_continue", price=price)}, {"see": "✍️"},
             {"text": PROMPT}, {"see": tr("en", "card").split("\n", 1)[0]}]
    return steps, tr("en", "btn_generate", price=price)


async def run(ctx: Context) -> list[Figure]:
    n = ctx.chats
    async with World(ctx.run_dir("create"), ctx.options) as world:
        await world.tg.create_users(FIRST_USER, n)
        await world.start_bot()
        steps, generate = draft_steps()
        prepared = await world.tg.wait_crowd(await world.tg.run_crowd(FIRST_USER, n, steps, STEP_TIMEOUT_S))
        # A draft the bot failed to prepare (an error reply) is a user-visible error, counted below;
        # the others still tap Generate together.
        ready = sorted(set(range(FIRST_USER, FIRST_USER + n)) - set(prepared["failed_users"]))
        if len(ready) < 2:
            raise RuntimeError(f"only {len(ready)} drafts prepared: {prepared['errors'][:2]}")
        since = (await world.kie.stats())["now"]
        tapped = await world.tg.wait_crowd(await world.tg.run_crowd(
            0, 0, [{"tap": generate}], STEP_TIMEOUT_S, user_ids=ready))
        # Every create is due within n / 2 s at KIE's pace; the bound only ends a stall.
        loop = asyncio.get_running_loop()
        end = loop.time() + len(ready) / KIE_RATE * 2 + 60
        while True:
            creates = (await world.kie.stats(since))["routes"].get(CREATE) or {"ok": 0, "rate_limited": 0}
            if creates["ok"] >= len(ready) or loop.time() > end:
                break
            await asyncio.sleep(0.5)
        errors = world.bot_errors()
    if creates["ok"] < 2:
        raise RuntimeError(f"only {creates['ok']} createTask accepted")
    rate = (creates["ok"] - 1) / (creates["ok_last_at"] - creates["ok_first_at"])
    return [
        Figure("createTask pace", rate, "/s", KIE_RATE, "KIE's", Goal(">=", 95, "%"),
               f"{creates['ok']}/{len(ready)} created; taps unanswered: {tapped['failed']}"),
        Figure("createTask 429 from KIE", creates["rate_limited"], "", goal=Goal("==", 0)),
        Figure("drafts not prepared", n - len(ready), "", goal=Goal("==", 0),
               note="; ".join(prepared["errors"][:1])),
        Figure("generations not created", len(ready) - creates["ok"], "", goal=Goal("==", 0)),
        Figure("error lines in bot log", errors, "", goal=Goal("==", 0)),
    ]
