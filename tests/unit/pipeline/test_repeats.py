"""Repeats are harmless: a pass run again, two passes at once, a callback delivered again."""

from __future__ import annotations

import asyncio

from aiogram.methods import SendPhoto

from bot.services.pipeline.complete import CallbackOutcome
from storage.models import Stage
from tests.unit.pipeline.harness import PRICE


async def test_each_pass_run_a_second_time_changes_nothing(world):
    g = await world.start()
    steps = [("submit", "generating"), ("poll", "storing"), ("store", "succeeded"),
             ("deliver", "succeeded")]
    for stage, status in steps:
        if stage == "poll":  # no callback: the poller finds the result after the grace
            (task,) = world.kie.creates
            world.kie.succeed(task.task_id)
            world.clock.advance(world.config.callback_grace_s)
        assert await world.run(stage) == 1, stage
        assert (await world.row(g.id)).status == status
        after_first = await world.snapshot(g.id)
        assert await world.run(stage) == 0, stage
        assert await world.snapshot(g.id) == after_first, stage

    done = await world.snapshot(g.id)
    assert len(world.kie.creates) == 1 and len(done["files"]) == 1
    assert [type(m) for m in done["telegram"]] == [SendPhoto]
    assert done["ledger"] == [("spend", -PRICE)]


async def test_two_passes_of_a_stage_at_once_handle_a_row_once(world):
    g = await world.start()
    assert sorted(await asyncio.gather(world.run("submit"), world.run("submit"))) == [0, 1]
    (task,) = world.kie.creates
    world.kie.succeed(task.task_id)
    world.clock.advance(world.config.callback_grace_s)  # no callback: the poller finds it
    for stage in ("poll", "store", "deliver"):
        assert sorted(await asyncio.gather(world.run(stage), world.run(stage))) == [0, 1], stage
    assert (await world.row(g.id)).delivered_at is not None
    assert len(world.kie.record_reads) == 1 and len(world.files.requests) == 1
    assert [type(m) for m in world.bot.methods] == [SendPhoto]


async def test_a_callback_delivered_several_times_is_acted_on_once(world):
    g = await world.start()
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    world.kie.succeed(task.task_id)

    # KIE retries its callback: twice in a row and three at once.
    assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    outcomes = await asyncio.gather(*(world.callback(g.id, task.task_id) for _ in range(3)))
    assert set(outcomes) == {CallbackOutcome.accepted}
    assert world.kicks.count(Stage.store) == 1  # one move to storing for five callbacks
    assert world.kie.record_reads == []  # the callbacks carried the results
    assert await world.run("poll") == 0
    assert (await world.row(g.id)).status == "storing"

    # One more, late, while the result is being stored: still nothing twice.
    assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    assert await world.run("poll") == 0
    assert await world.run("store") == 1 and await world.run("deliver") == 1
    assert await world.callback(g.id, task.task_id) is CallbackOutcome.accepted
    for stage in Stage:
        assert await world.run(stage) == 0, stage
    assert len(world.kie.creates) == 1 and len(world.files.requests) == 1
    assert [type(m) for m in world.bot.methods] == [SendPhoto]
    assert await world.ledger(g.id) == [("spend", -PRICE)]


async def test_a_callback_for_another_task_is_refused(world):
    g = await world.start()
    other = await world.start(request_key="card-2")
    assert await world.run("submit") == 2
    own_task, other_task = (t.task_id for t in world.kie.creates)
    before = await world.row(g.id)
    world.kie.succeed(other_task)
    assert await world.callback(g.id, other_task) is CallbackOutcome.task_mismatch
    assert await world.row(g.id) == before
    assert (await world.row(other.id)).callback_received_at is None
    assert own_task != other_task


async def test_object_names_carry_the_rows_own_random_part(world):
    """Drawn once at start and kept on the row: unguessable, yet a storer that runs again
    writes (overwrites) the very same names."""
    from bot.services.pipeline.context import MEDIA_TOKEN_KEY
    from storage.media import media_path

    g = await world.start()
    token = g.options[MEDIA_TOKEN_KEY]
    assert isinstance(token, str) and len(token) == 22
    assert await world.run("submit") == 1
    (task,) = world.kie.creates
    world.kie.succeed(task.task_id)
    world.clock.advance(world.config.callback_grace_s)
    assert await world.run("poll") == 1 and await world.run("store") == 1
    row = await world.row(g.id)
    [path] = row.stored_paths
    ext = path.rsplit(".", 1)[1]
    assert path == media_path(row.user_id, row.kind, row.id, 0, row.completed_at, ext, token=token)
    assert [f.name for f in world.stored_files()] == [path.rsplit("/", 1)[1]]
