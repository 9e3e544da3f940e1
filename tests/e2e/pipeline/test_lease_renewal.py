"""Two app instances on one database, a send slower than the lease: each result is delivered
once. The sending process keeps its lease alive while the upload is in flight, so the other
process — passing every 0.25 s — never gets the row (issue 11: with LEASE_SECONDS=8 and a 20 s
send, a second process re-sent 2 of 3 results)."""

from __future__ import annotations

import asyncio

from bot.config import load_settings
from kiebot.app import build_app
from tests.conftest import free_port, wait_until
from tests.e2e.pipeline.helpers import make_user, media_messages, plain_stack, wait_final

LEASE = 3
USERS = (701, 702, 703)


async def test_a_send_slower_than_the_lease_is_delivered_once(tmp_path):
    from testkit.presenter import PlainPresenter

    async with plain_stack(tmp_path, settings={"LEASE_SECONDS": str(LEASE)}) as stack:
        other = None
        try:
            chats = {uid: await make_user(stack, uid) for uid in USERS}
            stack.telegram.faults.hold({"sendPhoto"})
            started = [await stack.app.generations.start(
                user_id=uid, chat_id=uid, model_key="seedream_45_t2i", options={},
                prompt=f"slow send {uid}", request_key=f"lease-{uid}") for uid in USERS]
            ids = [s.generation.id for s in started]
            repo = stack.app.repository

            def sending() -> int:
                return sum(c.method == "sendPhoto" for c in stack.telegram.calls_in_progress)

            await wait_until(lambda: sending() >= len(USERS), timeout=60)
            # The second process starts while the first one's uploads hang: its deliver stage is
            # free to claim any row whose lease runs out.
            env = {**stack.env(), "SERVER_PORT": str(free_port())}
            other = build_app(load_settings(_env_file=None, **env), presenter=PlainPresenter())
            other.polling_timeout = 1
            await other.start()
            first = {gid: (await repo.get_generation(gid)).lease_until for gid in ids}
            assert all(first.values())

            async def leases_outlived_twice() -> bool:
                # Renewed again and again: well past the point where a lease stamped once (and
                # never renewed) would have run out and the other process would have claimed —
                # or that has happened, and a second upload of a result has begun.
                if sending() > len(USERS):
                    return True
                for gid in ids:
                    until = (await repo.get_generation(gid)).lease_until
                    if until is None or (until - first[gid]).total_seconds() < 2 * LEASE:
                        return False
                return True

            await wait_until(leases_outlived_twice, timeout=60, interval=0.1)
            assert sending() == len(USERS)  # nobody else started a second upload meanwhile
            stack.telegram.faults.release()
            for gid in ids:
                await wait_final(stack, gid, timeout=30)
            await stack.settle()
            await other.jobs.drain()
            await stack.telegram.wait_idle()
            for uid, tg in chats.items():
                assert len(media_messages(tg)) == 1, uid
            assert sum(c.method == "sendPhoto" for c in stack.telegram.calls) == len(USERS)
        finally:
            stack.telegram.faults.release()
            if other is not None:
                await other.stop()
