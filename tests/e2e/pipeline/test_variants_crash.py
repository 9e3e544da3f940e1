"""SIGKILL the real `kiebot run` around a variant order (3 pictures from one Generate): after a
restart the order is charged 3 × price once, every row ends delivered, and the chat has the
album once (or twice when the kill fell between Telegram's answer and our record — never lost)."""

from __future__ import annotations

import pytest

from kiebot.app import build_app
from testkit.stack import LocalStack
from tests.conftest import wait_until

pytestmark = pytest.mark.slow

BONUS = 100


async def _all_delivered(client, user_id, timeout=60.0):
    async def check():
        rows = await client.repository.variant_rows(user_id, f"order-{user_id}", 3)
        return rows if len(rows) == 3 and all(r.delivered_at for r in rows) else None

    return await wait_until(check, timeout=timeout, interval=0.1)


def _groups(stack, user_id) -> list[str]:
    pictures = [e for e in stack.telegram.user(user_id).bot_messages if e.media]
    return [e.raw.get("media_group_id") for e in pictures]


async def test_sigkill_around_a_variant_order_charges_once_and_loses_nothing(tmp_path):
    settings = {"LEASE_SECONDS": "3", "KIE_TIMEOUT_SECONDS": "3"}
    async with LocalStack(tmp_path, in_process=False, settings=settings) as stack:
        await stack.start_process()
        client = build_app(stack.settings)  # writes rows as the handlers would; runs no jobs
        try:
            for uid in (501, 502):
                stack.telegram.user(uid, first_name=f"u{uid}")
                await client.repository.register_user(
                    uid, username=None, first_name="u", last_name=None, language="en",
                    signup_bonus=BONUS)

            async def order(uid):
                for _ in range(2):  # the tap and its replay: one order
                    await client.generations.start(
                        user_id=uid, chat_id=uid, model_key="seedream_45_t2i", options={},
                        prompt="variants", request_key=f"order-{uid}", variants=3)

            # 1. Killed right after the order was charged: three queued rows, nothing at KIE.
            await stack.kill_process()
            await order(501)
            rows = await client.repository.variant_rows(501, "order-501", 3)
            assert [r.status for r in rows] == ["queued"] * 3
            await stack.start_process()
            await _all_delivered(client, 501)

            # 2. Killed while the album is being sent: Telegram gets it, we never record it.
            stack.telegram.faults.hold({"sendMediaGroup"})
            await order(502)
            await wait_until(lambda: any(c.method == "sendMediaGroup"
                                         for c in stack.telegram.calls_in_progress), timeout=30)
            await stack.kill_process()
            stack.telegram.faults.release()
            await stack.telegram.wait_idle()
            await stack.start_process()
            await _all_delivered(client, 502)

            for uid, albums in ((501, {1}), (502, {1, 2})):
                ledger = sorted((e.reason, e.delta) for e in await client.repository.ledger(uid))
                assert ledger == [("signup_bonus", BONUS)] + [("spend", -8)] * 3, uid
                assert (await client.repository.get_user(uid)).balance == BONUS - 24
                groups = _groups(stack, uid)
                assert None not in groups and len(groups) == 3 * len(set(groups)), uid
                assert len(set(groups)) in albums, uid
            assert len(stack.kie.tasks) == 6  # one KIE task per picture, never a second
            assert await client.repository.ledger_check() == []
            assert await stack.terminate_process() == 0
        finally:
            await client.stop()
