"""Pacing under the tier's no-sleep guard (the guards themselves: tests/unit/test_guards.py)."""

from __future__ import annotations


async def test_per_chat_pacing_moves_the_fake_clock_not_the_real_one(world):
    """Two results for one chat within a second: ChatSender's 1/s pacing sleeps on the clock."""
    first = await world.start(request_key="card-1")
    second = await world.start(request_key="card-2")
    assert await world.run("submit") == 2
    for g, task in zip((first, second), world.kie.creates, strict=True):
        world.kie.succeed(task.task_id)
        await world.callback(g.id, task.task_id)
    assert await world.run("store") == 2  # the callbacks carried the results
    started = world.clock()
    assert await world.run("deliver") == 2
    (t1, _), (t2, _) = world.bot.sent
    assert (t2 - t1).total_seconds() >= 1.0 and world.clock.sleeps
    assert world.clock() > started
