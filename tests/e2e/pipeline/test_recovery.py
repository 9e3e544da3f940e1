"""Time-based endings: a stuck generation expires, an unconfirmed create is refunded — once."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from testkit.kie.faults import StateDelays
from storage.schema import generations
from tests.conftest import wait_until
from tests.e2e.pipeline.helpers import BONUS, balance, ledger_reasons, make_user, plain_stack, start, wait_final

SLOW = {"delays": StateDelays(waiting=60.0, queuing=None, generating=None)}


async def test_stuck_generation_expires_and_is_refunded_once(tmp_path):
    async with plain_stack(tmp_path, emulator_options=SLOW) as stack:
        tg = await make_user(stack)
        started = await start(stack, card=True)
        repo = stack.app.repository

        async def generating():
            g = await repo.get_generation(started.generation.id)
            return g.status == "generating"

        await wait_until(generating, timeout=10)
        # While it runs: the status card shows the state and a chat action is sent.
        card = started.generation.progress_message_id
        await wait_until(lambda: any(e.message_id == card and "Generating" in e.text
                                     for e in tg.bot_messages), timeout=10)
        await wait_until(lambda: any(c.method == "sendChatAction"
                                     and c.params.get("action") == "upload_photo"
                                     for c in stack.telegram.calls), timeout=10)
        async with stack.app.engine.begin() as conn:  # as if 30 minutes had passed
            await conn.execute(sa.update(generations).where(generations.c.id == started.generation.id)
                               .values(deadline_at=started.generation.created_at))
        g = await wait_final(stack, started.generation.id)
        assert g.status == "failed" and "longer than 30 minutes" in g.error
        assert await balance(stack) == BONUS
        assert await ledger_reasons(stack) == [("refund", 8), ("signup_bonus", BONUS), ("spend", -8)]
        assert sum("refunded" in e.text for e in tg.bot_messages) == 1


async def test_submit_unknown_without_callback_is_refunded_after_its_window(tmp_path):
    settings = {"KIE_TIMEOUT_SECONDS": "0.5"}
    async with plain_stack(tmp_path, webhook=False, settings=settings) as stack:
        await make_user(stack)
        stack.kie.faults.hang_creates = 1
        stack.kie.faults.hang_seconds = 3.0
        started = await start(stack, card=False)
        repo = stack.app.repository

        async def unknown():
            g = await repo.get_generation(started.generation.id)
            return g if g.status == "submit_unknown" else None

        g = await wait_until(unknown, timeout=10)
        assert g.task_id is None and len(stack.kie.tasks) == 1
        # Polling-only mode: no callback can name the task. Move the clock past the window.
        pipeline = stack.app.generations.pipeline
        real_clock = pipeline.clock
        pipeline.clock = lambda: real_clock() + timedelta(minutes=21)
        await repo.update_fields(g.id, next_poll_at=g.submitted_at)
        g = await wait_final(stack, g.id)
        assert g.status == "failed" and "did not confirm" in g.error
        assert await ledger_reasons(stack) == [("refund", 8), ("signup_bonus", BONUS), ("spend", -8)]
        assert len(stack.kie.tasks) == 1  # and it never tried again
