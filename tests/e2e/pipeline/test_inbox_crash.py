"""SIGKILL the real `kiebot run` right after Telegram got its 200, at each point an update can
be in: stored but not yet handled, mid-handler, handled but not yet marked. After a restart
every acknowledged update is handled, and exactly once where it matters: one generation and one
charge per Generate tap, a payment credited at once by its own update.

Postgres + Redis, as several processes would run: the FSM (the user's draft) survives the
restart in Redis, and the test parks the child at each point with Postgres locks (the inbox's
claim lock, a row lock on the update) and the fake Telegram's "hold" knob — conditions, never
timers."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from kiebot.app import build_app
from storage.dialect import INBOX_CLAIM_LOCK
from storage.models import GenerationStatus
from testkit.scripted import media_entries, see, tap, wait_media
from testkit.stack import LocalStack
from tests.conftest import wait_until
from tests.e2e.conversation.conftest import start_image_flow

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BONUS = 50
SETTINGS = {"INBOX_LEASE_SECONDS": "3", "SIGNUP_BONUS": str(BONUS), "LEASE_SECONDS": "4"}


def _stack(tmp_path, pg_database, redis_url) -> LocalStack:
    return LocalStack(tmp_path, database_url=pg_database, in_process=False,
                      telegram_options={"chat_burst": 30},
                      settings={**SETTINGS, "REDIS_URL": redis_url})


def _delivered(stack, kind: str, since: int) -> dict | None:
    """The first update of `kind` the fake delivered (answered 200) after index `since`."""
    return next((u for u in stack.telegram.updates.delivered[since:] if kind in u), None)


def _in_progress(stack, method: str) -> bool:
    return any(c.method.lower() == method.lower() for c in stack.telegram.calls_in_progress)


async def _ledger(client, uid):
    return [(e.reason, e.delta) for e in reversed(await client.repository.ledger(uid, limit=50))]


async def _generations(client, uid):
    return await client.repository.list_library(uid, limit=10, offset=0,
                                                statuses=tuple(GenerationStatus))


async def _handled(client, update_id: int) -> bool:
    async with client.engine.connect() as conn:
        return await conn.scalar(sa.text(
            "SELECT handled_at IS NOT NULL FROM updates_inbox WHERE update_id = :u"),
            {"u": update_id}) is True


async def _delivered_at(client, uid) -> bool:
    gens = await _generations(client, uid)
    return bool(gens) and gens[0].delivered_at is not None


async def _expect_one_generation_delivered(stack, client, user, uid):
    await wait_media(user, 1, timeout=90)
    # A replay answers a button Telegram stopped waiting for: no apology for that.
    assert not any("went wrong" in e.text for e in user.transcript if e.from_bot)
    gens = await _generations(client, uid)
    assert len(gens) == 1 and gens[0].status == "succeeded", gens
    assert await _ledger(client, uid) == [("signup_bonus", BONUS), ("spend", -8)]


async def test_a_generate_tap_stored_but_not_handled_is_handled_after_a_sigkill(
        tmp_path, pg_database, redis_url):
    async with _stack(tmp_path, pg_database, redis_url) as stack:
        await stack.start_process()
        client = build_app(stack.settings)  # never started: reads the database only
        try:
            # Stored, not yet handled: the inbox's claim lock is ours, so the child stores the
            # tap (and Telegram gets its 200) but cannot claim it.
            ann = stack.telegram.user(701, first_name="Ann")
            generate = await start_image_flow(ann)
            async with client.engine.connect() as lock:
                await lock.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": INBOX_CLAIM_LOCK})
                since = len(stack.telegram.updates.delivered)
                pressed = asyncio.create_task(tap(ann, generate))
                await wait_until(lambda: _delivered(stack, "callback_query", since))
                assert await _generations(client, 701) == []
                await stack.kill_process()
                await lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                                   {"k": INBOX_CLAIM_LOCK})
            await stack.start_process()
            await pressed
            await _expect_one_generation_delivered(stack, client, ann, 701)
        finally:
            await client.engine.dispose()


async def test_a_generate_tap_killed_mid_handler_is_replayed_without_a_second_charge(
        tmp_path, pg_database, redis_url):
    async with _stack(tmp_path, pg_database, redis_url) as stack:
        await stack.start_process()
        client = build_app(stack.settings)
        try:
            # Mid-handler: charged, the button's answer held at Telegram. The pipeline is let
            # finish first (it does not answer buttons), so the kill lands in the handler alone
            # and what is tested is the replay: no second row, charge or result.
            bob = stack.telegram.user(702, first_name="Bob")
            generate = await start_image_flow(bob)
            stack.telegram.faults.hold({"answerCallbackQuery"})
            since = len(stack.telegram.updates.delivered)
            pressed = asyncio.create_task(bob.tap(generate))
            await wait_until(lambda: _in_progress(stack, "answerCallbackQuery"))
            update_id = (await wait_until(
                lambda: _delivered(stack, "callback_query", since)))["update_id"]
            await _expect_one_generation_delivered(stack, client, bob, 702)
            await wait_until(lambda: _delivered_at(client, 702))
            await stack.kill_process()
            stack.telegram.faults.release()
            await pressed
            await stack.start_process()
            await wait_until(lambda: _handled(client, update_id), timeout=60)
            await stack.terminate_process()  # let everything the replay started finish
            assert len(media_entries(bob)) == 1
            await _expect_one_generation_delivered(stack, client, bob, 702)
        finally:
            await client.engine.dispose()


async def test_a_generate_tap_handled_but_not_marked_is_replayed_harmlessly(
        tmp_path, pg_database, redis_url):
    async with _stack(tmp_path, pg_database, redis_url) as stack:
        await stack.start_process()
        client = build_app(stack.settings)
        try:
            # Handled, not yet marked: the handler's last call (the card edit) answered, and the
            # mark waits on our lock of the update's row.
            cat = stack.telegram.user(703, first_name="Cat")
            generate = await start_image_flow(cat)
            stack.telegram.faults.hold({"editMessageText"})
            since = len(stack.telegram.updates.delivered)
            pressed = asyncio.create_task(cat.tap(generate))
            await wait_until(lambda: _in_progress(stack, "editMessageText"))
            update_id = (await wait_until(
                lambda: _delivered(stack, "callback_query", since)))["update_id"]
            async with client.engine.connect() as conn:
                row_lock = await conn.begin()
                await conn.execute(sa.text(
                    "SELECT 1 FROM updates_inbox WHERE update_id = :u FOR UPDATE"), {"u": update_id})
                stack.telegram.faults.release()

                async def mark_waiting():
                    # The mark is the one UPDATE of the inbox that sets handled_at.
                    async with client.engine.connect() as probe:
                        return await probe.scalar(sa.text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND query LIKE 'UPDATE updates_inbox SET %handled_at=$%'"))

                # Both: the handler returned (its mark waits on our lock) and the pipeline
                # delivered (so the kill interrupts neither the pipeline nor the handler).
                await wait_until(mark_waiting)
                await wait_until(lambda: _delivered_at(client, 703))
                assert not await _handled(client, update_id)
                await stack.kill_process()
                await row_lock.rollback()
            await pressed
            await stack.start_process()
            await wait_until(lambda: _handled(client, update_id), timeout=60)
            await stack.terminate_process()
            assert len(media_entries(cat)) == 1
            await _expect_one_generation_delivered(stack, client, cat, 703)
            assert await client.repository.ledger_check() == []
        finally:
            await client.engine.dispose()


async def test_an_acknowledged_payment_is_credited_at_once_after_a_sigkill(
        tmp_path, pg_database, redis_url):
    async with _stack(tmp_path, pg_database, redis_url) as stack:
        await stack.start_process()
        client = build_app(stack.settings)
        try:
            ann = stack.telegram.user(711, first_name="Ann")
            await ann.send_command("/start")
            await tap(ann, "💰 Balance")
            await tap(ann, "💳 Top up")
            await tap(ann, "165⭐ for 150 Telegram Stars")
            await ann.wait_until(lambda t: any(e.invoice for e in t))
            # The pre-checkout answer is held; meanwhile the claim lock becomes ours, so the
            # successful_payment that follows is stored and acknowledged but not handled.
            stack.telegram.faults.hold({"answerPreCheckoutQuery"})
            since = len(stack.telegram.updates.delivered)
            paying = asyncio.create_task(ann.pay())
            await wait_until(lambda: _in_progress(stack, "answerPreCheckoutQuery"))
            async with client.engine.connect() as lock:
                await lock.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": INBOX_CLAIM_LOCK})
                stack.telegram.faults.release()
                outcome = await paying
                assert outcome.ok, outcome
                paid = await wait_until(lambda: next(
                    (u for u in stack.telegram.updates.delivered[since:]
                     if "successful_payment" in (u.get("message") or {})), None))
                assert await _ledger(client, 711) == [("signup_bonus", BONUS)]
                await stack.kill_process()
                await lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                                   {"k": INBOX_CLAIM_LOCK})
            await stack.start_process()
            await see(ann, "Payment received: +165⭐")
            assert await _ledger(client, 711) == [("signup_bonus", BONUS), ("purchase", 165)]
            # By its own update, not by the reconciliation job (which leaves fresh payments to
            # the handler anyway): the update is marked handled, the reconciler logged nothing.
            await wait_until(lambda: _handled(client, paid["update_id"]))
            log = stack.log_path.read_text(errors="replace")
            assert "credited by reconciliation" not in log and "credited late" not in log
            assert await client.repository.ledger_check() == []
        finally:
            await client.engine.dispose()
