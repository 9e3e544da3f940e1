"""A stage that keeps failing on one row: one log line per failure, a per-row backoff kept on the
row, the admins told once, and after a bounded number of attempts the user refunded once —
not a traceback per pass until the 30-minute expiry."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from aiogram.methods import SendMessage, SendPhoto

from bot.services.pipeline.failures import backoff_seconds, describe
from storage.models import Stage
from tests.unit.pipeline.harness import CHAT_ID, PRICE, SIGNUP_BONUS

ADMIN = 777


def _failure_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("stage failed ")]


async def _storing(world):
    """A paid generation whose result KIE delivered by callback: due for the store stage."""
    g = await world.start()
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    world.kie.succeed(task.task_id)
    await world.callback(g.id, task.task_id)
    g = await world.row(g.id)
    assert g.status == "storing"
    return g


def _admin_messages(world) -> list[SendMessage]:
    return [m for m in world.bot.methods if isinstance(m, SendMessage) and m.chat_id == ADMIN]


def _user_messages(world) -> list[object]:
    return [m for m in world.bot.methods if getattr(m, "chat_id", None) == CHAT_ID]


async def _run_every_stage_repeatedly(world, times: int = 3) -> None:
    for _ in range(times):
        for stage in Stage:
            await world.run(stage)


async def test_unwritable_media_dir_backs_off_tells_admins_once_and_refunds_once(
        make_world, caplog):
    world = await make_world(admin_ids=(ADMIN,))
    config = world.config
    g = await _storing(world)
    # The media folder cannot be written: a file stands where MEDIA_DIR should be (the
    # tests run as root, which ignores a read-only mode; the store sees the same OSError).
    world.media_root.write_bytes(b"")
    caplog.set_level(logging.INFO)

    waits = []
    for attempt in range(1, config.stage_max_attempts + 1):
        assert await world.run("store") == 1, attempt
        row = await world.row(g.id)
        assert len(_failure_lines(caplog)) == attempt
        if attempt < config.stage_max_attempts:
            # Still storing, not due again before its backoff, which doubles each time.
            assert (row.status, row.stage_attempts) == ("storing", attempt)
            wait = row.next_poll_at - world.clock()
            waits.append(wait.total_seconds())
            assert "FileExistsError" in row.stage_error or "NotADirectory" in row.stage_error
            assert await world.run("store") == 0  # a pass before the backoff: nothing
            world.clock.advance(wait.total_seconds())
        # The admins are told once, at the alert threshold, never again.
        expected_alerts = 1 if attempt >= config.stage_alert_after else 0
        assert len(_admin_messages(world)) == expected_alerts, attempt

    assert waits == [backoff_seconds(n, config.stage_backoff_s, config.stage_backoff_cap_s)
                     for n in range(1, config.stage_max_attempts)]
    assert waits == sorted(waits) and waits[1] == 2 * waits[0]
    # Given up after N attempts — long before the 30-minute expiry — and refunded once.
    g = await world.row(g.id)
    assert g.status == "failed" and g.stage_attempts == 0
    assert sum(waits) < config.image_expiry.total_seconds() / 4
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
    assert await world.balance() == SIGNUP_BONUS

    # The user is told once, with the refund and the reason in their words.
    assert await world.run("deliver") == 1
    (told,) = _user_messages(world)
    assert isinstance(told, SendMessage)
    assert f"{PRICE}⭐ refunded" in told.text and "a problem on our side" in told.text

    # Money exactly once, told once, alerted once, whatever runs again (and time goes on).
    world.clock.advance(3600)
    await _run_every_stage_repeatedly(world)
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
    assert len(_user_messages(world)) == 1 and len(_admin_messages(world)) == 1
    (alert,) = _admin_messages(world)
    assert f"generation {g.id}" in alert.text and "store" in alert.text

    # The log: one line per failure, no traceback anywhere, one "gave up" line.
    lines = _failure_lines(caplog)
    assert len(lines) == config.stage_max_attempts
    assert all(r.exc_info is None for r in caplog.records)
    assert all(f"generation={g.id}" in r.getMessage() and "at=storage/media.py:" in r.getMessage()
               for r in lines)
    gave_up = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage().split(" stage=")[0] for r in gave_up] == [
        "gave up after repeated failures; failing"]
    caplog.clear()  # the ERROR above is the point of this test, not a crash


async def test_backoff_survives_a_restart(make_world, tmp_path, clock):
    """The count and the not-before live on the row: a new process (a new service over the
    same database) continues them instead of starting again."""
    from tests.unit.pipeline.harness import build_world

    world = await make_world()
    g = await _storing(world)
    world.media_root.write_bytes(b"")
    for _ in range(2):
        assert await world.run("store") == 1
        world.clock.advance(((await world.row(g.id)).next_poll_at - world.clock()).total_seconds())
    restarted = await build_world(tmp_path, clock, admin_ids=(ADMIN,))
    try:
        row = await restarted.row(g.id)
        assert row.stage_attempts == 2
        assert await restarted.run("store") == 1
        row = await restarted.row(g.id)
        assert row.stage_attempts == 3
        assert row.next_poll_at - clock() == timedelta(seconds=backoff_seconds(
            3, restarted.config.stage_backoff_s, restarted.config.stage_backoff_cap_s))
    finally:
        await restarted.close()


async def test_a_stage_that_recovers_goes_on_normally(world):
    g = await _storing(world)
    world.media_root.write_bytes(b"")
    assert await world.run("store") == 1
    assert (await world.row(g.id)).stage_attempts == 1
    world.media_root.unlink()  # the operator fixed the disk
    world.clock.advance(world.config.stage_backoff_s)
    assert await world.run("store") == 1
    g = await world.row(g.id)
    assert g.status == "succeeded" and g.stage_attempts == 0  # the next stage starts clean
    assert await world.run("deliver") == 1
    assert [type(m) for m in _user_messages(world)] == [SendPhoto]
    assert await world.ledger(g.id) == [("spend", -PRICE)]


async def test_a_delivery_that_always_raises_is_given_up_and_refunded_once(make_world, caplog):
    world = await make_world(admin_ids=(ADMIN,))
    config = world.config
    g = await _storing(world)
    assert await world.run("store") == 1
    assert (await world.row(g.id)).status == "succeeded"
    # Every photo upload to this chat crashes in our own code (not Telegram saying no).
    world.bot.fail = lambda m: (RuntimeError("upload body could not be built")
                                if isinstance(m, SendPhoto) else None)

    for attempt in range(1, config.stage_max_attempts + 1):
        assert await world.run("deliver") == 1, attempt
        row = await world.row(g.id)
        if attempt < config.stage_max_attempts:
            assert row.status == "succeeded" and row.stage_attempts == attempt
            world.clock.advance((row.next_poll_at - world.clock()).total_seconds())
    row = await world.row(g.id)
    # The result could never reach the chat: failed, refunded once, the files kept.
    assert row.status == "failed" and row.stored_paths and row.delivered_at is None
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
    # The failure message is another way in, and it gets through.
    assert await world.run("deliver") == 1
    told = [m for m in _user_messages(world) if isinstance(m, SendMessage)]
    assert len(told) == 1 and f"{PRICE}⭐ refunded" in told[0].text
    world.clock.advance(3600)
    await _run_every_stage_repeatedly(world)
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
    assert len(_admin_messages(world)) == 1
    assert len(_failure_lines(caplog)) == config.stage_max_attempts
    assert all(r.exc_info is None for r in caplog.records)
    caplog.clear()


async def test_a_failure_message_that_never_gets_through_is_given_up(make_world, caplog):
    world = await make_world(admin_ids=(ADMIN,), stage_max_attempts=3, stage_alert_after=2)
    g = await world.start()
    await world.repository.fail_generation(g.id, error="KIE could not generate this",
                                           now=world.clock())
    world.bot.fail = lambda m: (ValueError("cannot render")
                                if getattr(m, "chat_id", None) == CHAT_ID else None)
    for _ in range(3):
        assert await world.run("deliver") == 1
        row = await world.row(g.id)
        if row.delivered_at is None:
            world.clock.advance((row.next_poll_at - world.clock()).total_seconds())
    row = await world.row(g.id)
    assert row.delivered_at is not None  # given up telling: not retried forever
    assert await world.ledger(g.id) == [("spend", -PRICE), ("refund", PRICE)]
    assert await world.run("deliver") == 0
    assert len(_admin_messages(world)) == 1
    caplog.clear()


async def test_one_process_reports_the_same_failure_on_many_rows_once(make_world, caplog):
    """A read-only disk fails every row the same way: the admins get one message, not one per
    row, and every row is marked as told."""
    world = await make_world(admin_ids=(ADMIN,), stage_alert_after=1)
    first = await _storing(world)
    second_started = await world.generations.start(
        user_id=CHAT_ID, chat_id=CHAT_ID, model_key="seedream_45_t2i", options={},
        prompt="another", request_key="card-2")
    assert await world.run("submit") == 1
    task = world.kie.creates[-1]
    world.kie.succeed(task.task_id)
    await world.callback(second_started.generation.id, task.task_id)
    world.media_root.write_bytes(b"")
    caplog.set_level(logging.INFO)
    assert await world.run("store") == 2
    assert len(_admin_messages(world)) == 1
    for gid in (first.id, second_started.generation.id):
        assert (await world.row(gid)).alerted_at == world.clock()
    assert len(_failure_lines(caplog)) == 2


async def test_a_database_outage_is_not_counted_against_the_row(world, caplog):
    from storage.errors import DatabaseUnavailableError

    g = await _storing(world)
    [claimed] = await world.repository.claim(Stage.store, owner="unit:store", lease_seconds=60,
                                             limit=1, now=world.clock())
    caplog.set_level(logging.INFO)
    outage = DatabaseUnavailableError("database unavailable: ConnectionRefusedError")
    await world.generations.failures.record(Stage.store, claimed, outage, owner="unit:store")
    row = await world.row(g.id)
    assert (row.stage_attempts, row.stage_error, row.alerted_at) == (0, None, None)
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.pipeline.failures"]
    assert line.startswith("stage failed: database unavailable stage=store")


def test_describe_masks_secrets_and_keeps_one_line():
    exc = RuntimeError("GET https://u:hunter2pass@db.example/x?token=abcdef123456 failed\nmore")
    text = describe(exc)
    assert "hunter2pass" not in text and "abcdef123456" not in text and "\n" not in text
    assert text.startswith("RuntimeError: GET https://u:***@db.example/x?token=***")


@pytest.mark.parametrize(("attempt", "expected"), [(1, 10), (2, 20), (5, 160), (9, 300)])
def test_backoff_doubles_up_to_the_cap(attempt, expected):
    assert backoff_seconds(attempt, 10.0, 300.0) == expected
