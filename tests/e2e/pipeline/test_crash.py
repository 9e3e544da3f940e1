"""SIGKILL the real `kiebot run` process at each step; after restart every generation ends
delivered or refunded — never both, never neither — and the money adds up."""

from __future__ import annotations

import pytest

from kiebot.app import build_app
from testkit.kie import CallbackRetry
from testkit.stack import LocalStack
from tests.conftest import wait_until

pytestmark = pytest.mark.slow

USERS = {"charged": 401, "submitted": 402, "stored": 403, "sent": 404, "creating": 405}
BONUS = 100


async def _row(client, gid):
    return await client.repository.get_generation(gid)


async def _wait_status(client, gid, statuses, timeout=30.0):
    async def check():
        g = await _row(client, gid)
        return g if g.status in statuses else None

    return await wait_until(check, timeout=timeout, interval=0.05)


async def _wait_done(client, gid, timeout=60.0):
    async def check():
        g = await _row(client, gid)
        return g if g.is_final and g.delivered_at is not None else None

    return await wait_until(check, timeout=timeout, interval=0.1)


async def test_sigkill_at_every_step_ends_delivered_or_refunded(tmp_path):
    settings = {"LEASE_SECONDS": "3", "KIE_TIMEOUT_SECONDS": "3"}
    async with LocalStack(tmp_path, in_process=False, settings=settings) as stack:
        await stack.start_process()
        # A client in this process writes rows exactly as the handlers would; the child
        # process does all the work (this app is never started, so it runs no jobs).
        client = build_app(stack.settings)
        try:
            ids = {}
            for name, uid in USERS.items():
                stack.telegram.user(uid, first_name=name)
                await client.repository.register_user(
                    uid, username=None, first_name=name, last_name=None, language="en",
                    signup_bonus=BONUS)

            async def begin(name):
                uid = USERS[name]
                started = await client.generations.start(
                    user_id=uid, chat_id=uid, model_key="seedream_45_t2i", options={},
                    prompt=f"crash test {name}", request_key=f"crash-{name}")
                ids[name] = started.generation.id
                return started.generation.id

            # 1. Killed right after charging: the row is paid and queued, nothing sent to KIE.
            #    (A kill *inside* createTask leaves the outcome unknown: submit_unknown, then the
            #    callback or a refund — see docs/lifecycle.md and test_submit_unknown_*.)
            await stack.kill_process()
            gid = await begin("charged")
            assert (await _row(client, gid)).status == "queued"
            await stack.start_process()
            await _wait_done(client, gid)

            # 2. Killed after submitting: the task runs at KIE (held there until we are down),
            #    its callback finds nobody (one try, no retry) and the restarted poller alone
            #    must finish the row.
            stack.kie.delays.waiting = 3600
            stack.kie.callback_retry = CallbackRetry(retries=0)
            gid = await begin("submitted")
            task_id = (await _wait_status(client, gid, {"generating"})).task_id
            await stack.kill_process()
            stack.kie.delays.waiting = 0.2
            stack.kie.finish(stack.kie.tasks[task_id], fail=False)
            await wait_until(lambda: any(a.task_id == task_id and a.status is None
                                         for a in stack.kie.callbacks), timeout=30)
            await stack.start_process()
            await _wait_done(client, gid)

            # 3. Killed after storing, while Telegram refuses the upload (5xx): nothing was sent.
            stack.telegram.faults.server_error_next(1000, status=502)
            gid = await begin("stored")
            await _wait_status(client, gid, {"succeeded"})
            await wait_until(lambda: any(c.status == 502 for c in stack.telegram.calls), timeout=10)
            await stack.kill_process()
            stack.telegram.faults.server_error_next(0)
            await stack.start_process()
            await _wait_done(client, gid)

            # 4. Killed while sending: Telegram gets the photo, we never record it.
            stack.telegram.faults.hold({"sendPhoto"})
            gid = await begin("sent")
            await wait_until(lambda: any(c.method == "sendPhoto" for c in stack.telegram.calls_in_progress),
                             timeout=30)
            await stack.kill_process()
            stack.telegram.faults.release()
            await stack.telegram.wait_idle()  # the held sendPhoto lands in the chat
            await stack.start_process()
            await _wait_done(client, gid)

            # 5. Killed inside createTask: KIE made the task but we never saw the answer. The
            #    restarted submitter must not create again; the (late) callback finishes it.
            #    KIE retries the callback for about two minutes, however slowly we restart.
            stack.kie.faults.hang_creates = 1
            stack.kie.faults.hang_seconds = 20.0
            stack.kie.faults.callback_delay = 5.0
            stack.kie.callback_retry = CallbackRetry(retries=60, backoff=0.25, max_backoff=2.0)
            gid = await begin("creating")
            await wait_until(lambda: len(stack.kie.tasks) == 5, timeout=30)
            await stack.kill_process()
            stack.kie.faults.hang_creates = 0
            await stack.start_process()
            await _wait_status(client, gid, {"submit_unknown", "generating", "storing", "succeeded"})
            await _wait_done(client, gid)

            for name, uid in USERS.items():
                g = await _row(client, ids[name])
                user = await client.repository.get_user(uid)
                ledger = sorted((e.reason, e.delta) for e in await client.repository.ledger(uid, limit=50))
                photos = [e for e in stack.telegram.user(uid).bot_messages if e.media]
                if g.status == "succeeded":
                    assert ledger == [("signup_bonus", BONUS), ("spend", -8)], name
                    assert user.balance == BONUS - 8, name
                    assert 1 <= len(photos) <= (2 if name == "sent" else 1), name
                else:
                    assert g.status == "failed", name
                    assert ledger == [("refund", 8), ("signup_bonus", BONUS), ("spend", -8)], name
                    assert user.balance == BONUS and not photos, name
            assert len(stack.kie.tasks) == 5  # one KIE task per generation, never a second
            assert (await _row(client, ids["creating"])).status == "succeeded"
            assert await client.repository.ledger_check() == []
            assert await stack.terminate_process() == 0  # SIGTERM: clean shutdown
        finally:
            await client.stop()
