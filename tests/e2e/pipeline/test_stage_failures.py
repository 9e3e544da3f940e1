"""The whole bot (jobs on their interval, the conversation's presenter, fake Telegram, KIE
emulator) with a media folder it cannot write: the user's paid generation fails with a refund
after a bounded number of attempts — not at the 30-minute expiry — the admins are told once,
the log holds one line per failure and no traceback, and money moves exactly once however many
passes run afterwards."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace

import pytest

from storage.models import Stage
from testkit.scripted import see
from testkit.stack import LocalStack
from tests.conftest import wait_until
from tests.e2e.conversation.conftest import start_image_flow

pytestmark = pytest.mark.slow

ADMIN = 9001
USER = 9002


async def _delivered(app, generation_id: int) -> bool:
    g = await app.repository.get_generation(generation_id)
    return g is not None and g.delivered_at is not None


async def test_unwritable_media_dir_fails_and_refunds_once_and_tells_admins_once(
        tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with LocalStack(tmp_path, settings={"ADMIN_IDS": str(ADMIN),
                                              "SIGNUP_BONUS": "50"}) as stack:
        app = stack.app
        pipeline = app.generations.pipeline
        # The product's backoff (10 s doubling, 6 attempts, ~5 min) scaled down to fractions
        # of a second; everything else is as `kiebot run` wires it.
        pipeline.config = replace(pipeline.config, stage_backoff_s=0.05,
                                  stage_backoff_cap_s=0.4)
        attempts = pipeline.config.stage_max_attempts
        admin = stack.telegram.user(ADMIN, first_name="Op", language_code="en")
        await admin.send_command("/start")
        await admin.wait_for_message(lambda m: m.buttons)
        ann = stack.telegram.user(USER, first_name="Ann", language_code="en")
        generate = await start_image_flow(ann)

        media = stack.directory / "media"
        shutil.rmtree(media, ignore_errors=True)
        media.write_bytes(b"")  # MEDIA_DIR cannot be written (root ignores a read-only mode)
        await ann.tap(generate)

        await see(ann, "Refunded to your balance: 8⭐", timeout=60)
        await see(ann, "something went wrong on our side")
        await see(admin, "keeps failing on generation", timeout=10)
        [g] = await app.repository.list_library(USER, limit=5, offset=0, statuses=("failed",))
        await wait_until(lambda: _delivered(app, g.id), timeout=10)

        # Nothing more happens, however often every stage runs again.
        await stack.settle(passes=3)
        for _ in range(3):
            for stage in Stage:
                await app.generations.run_pass(stage)
        user = await app.repository.get_user(USER)
        assert user.balance == 50
        entries = [(e.reason, e.delta) for e in await app.repository.ledger(USER, limit=10)
                   if e.generation_id == g.id]
        assert sorted(entries) == [("refund", 8), ("spend", -8)]
        alerts = [e for e in admin.transcript if e.from_bot and "keeps failing" in e.text]
        assert len(alerts) == 1 and f"generation {g.id}" in alerts[0].text
        told = [e for e in ann.transcript if e.from_bot and "Refunded to your balance" in e.text]
        assert len(told) == 1

        failures = [r for r in caplog.records if r.getMessage().startswith("stage failed ")]
        assert len(failures) == attempts
        assert all(f"attempt={n}/{attempts}" in r.getMessage()
                   for n, r in enumerate(failures, start=1))
        assert not [r for r in caplog.records if r.exc_info is not None]
