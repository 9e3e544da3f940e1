"""Two bot processes on one Postgres database: every generation is created, charged and
delivered exactly once, whichever process picks it up."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest

from kiebot.app import build_app
from bot.config import load_settings
from tests.conftest import free_port
from tests.e2e.pipeline.helpers import BONUS, make_user, media_messages, plain_stack, wait_final

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USERS = list(range(601, 611))
CALLBACK_ID = re.compile(r"/kie/callback/(\d+)")


def _creates_by_generation(emulator) -> Counter:
    counts: Counter = Counter()
    for r in emulator.requests:
        if r.path.endswith("/createTask"):
            match = CALLBACK_ID.search((r.json or {}).get("callBackUrl") or "")
            counts[int(match.group(1)) if match else None] += 1
    return counts


def _count_creates(app, counter: Counter, name: str) -> None:
    original = app.kie.create_task

    async def create_task(*args, **kwargs):
        counter[name] += 1
        return await original(*args, **kwargs)

    app.kie.create_task = create_task


async def test_two_processes_share_the_work_without_doubles(tmp_path, pg_database):
    from testkit.presenter import PlainPresenter

    async with plain_stack(tmp_path, database_url=pg_database) as stack:
        # Process B: its own server port and owner, the same database, KIE account and bot.
        # PUBLIC_BASE_URL still names A, so KIE's callbacks wake A while B finds rows by polling.
        env = {**stack.env(), "SERVER_PORT": str(free_port())}
        other = build_app(load_settings(_env_file=None, **env), presenter=PlainPresenter())
        other.polling_timeout = 1
        await other.start()
        try:
            assert other.generations is not stack.app.generations
            per_app: Counter = Counter()
            _count_creates(stack.app, per_app, "a")
            _count_creates(other, per_app, "b")
            chats = {uid: await make_user(stack, uid) for uid in USERS}
            apps = [stack.app, other]

            async def begin(i: int, uid: int):
                app = apps[i % 2]  # each process's start kicks its own submitter
                return await app.generations.start(
                    user_id=uid, chat_id=uid, model_key="seedream_45_t2i", options={},
                    prompt=f"two processes {uid}", request_key=f"two-{uid}")

            # Slow creates keep each process's submit pass busy, so rows that arrive meanwhile
            # are claimed by whichever process is free: both take part, and they race.
            stack.kie.faults.hang_creates = len(USERS)
            stack.kie.faults.hang_seconds = 0.4
            started = []
            for wave in range(0, len(USERS), 2):
                pair = list(enumerate(USERS))[wave:wave + 2]
                started += await asyncio.gather(*(begin(i, uid) for i, uid in pair))
                await asyncio.sleep(0.15)
            ids = {s.generation.id: uid for s, uid in zip(started, USERS)}
            assert len(ids) == len(USERS)
            for gid in ids:
                g = await wait_final(stack, gid, timeout=45)
                assert g.status == "succeeded", (gid, g.status, g.fail_reason)
            # Callbacks handled, more passes run, passes of both processes finished, every
            # Telegram call answered: a second delivery would be in the chats now.
            await stack.settle()
            await other.jobs.drain()
            await stack.telegram.wait_idle()

            creates = _creates_by_generation(stack.kie)
            assert creates == Counter({gid: 1 for gid in ids}), creates
            assert len(stack.kie.tasks) == len(ids)
            assert sum(per_app.values()) == len(ids), per_app
            assert per_app["a"] and per_app["b"], per_app  # both processes really worked
            repo = stack.app.repository
            for gid, uid in ids.items():
                assert len(media_messages(chats[uid])) == 1, uid
                entries = sorted((e.reason, e.delta) for e in await repo.ledger(uid, limit=50))
                cost = (await repo.get_generation(gid)).cost
                assert entries == [("signup_bonus", BONUS), ("spend", -cost)], (uid, entries)
                assert (await repo.get_user(uid)).balance == BONUS - cost
            assert await repo.ledger_check() == []
        finally:
            await other.stop()
