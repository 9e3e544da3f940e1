"""recordInfo backoff: ~3 s for the first 30 s, then 5–10 s up to 2 min, then 15–30 s — measured
on the injected clock, one poll pass at a time."""

from __future__ import annotations

from datetime import timedelta


def _expected_delay(age_s: float) -> tuple[float, float]:
    if age_s < 30:
        return 3.0, 3.0
    if age_s < 120:
        return 5.0, 10.0
    return 15.0, 30.0


async def test_next_poll_at_follows_the_clock_through_the_backoff_bands(make_world):
    world = await make_world(public_base_url=None)  # polling only: first poll after 3 s
    g = await world.start()
    assert await world.run("submit") == 1
    g = await world.row(g.id)
    submitted = g.submitted_at
    assert g.next_poll_at == submitted + timedelta(seconds=3)

    bands_seen = set()
    polls = 0
    while (world.clock() - submitted).total_seconds() < 300:
        due = g.next_poll_at
        world.clock.now = due - timedelta(milliseconds=1)
        assert await world.run("poll") == 0  # not yet: no recordInfo spent
        world.clock.now = due
        assert await world.run("poll") == 1
        polls += 1
        g = await world.row(g.id)
        age = (world.clock() - submitted).total_seconds()
        low, high = _expected_delay(age)
        delay = (g.next_poll_at - world.clock()).total_seconds()
        assert low <= delay <= high, (age, delay)
        assert (g.status, g.kie_state, g.poll_attempts) == ("generating", "waiting", polls)
        bands_seen.add((low, high))

    assert bands_seen == {(3.0, 3.0), (5.0, 10.0), (15.0, 30.0)}
    assert len(world.kie.record_reads) == polls
    # 10 polls in the first 30 s, ~12 more to 2 min, ~6–12 after: nowhere near 10/s.
    assert 25 <= polls <= 40


async def test_webhook_mode_polls_anyway_when_no_callback_comes(world):
    g = await world.start()
    assert await world.run("submit") == 1
    grace = timedelta(seconds=world.config.callback_grace_s)
    world.clock.advance(grace.total_seconds() - 1)
    assert await world.run("poll") == 0
    world.clock.advance(1)
    assert await world.run("poll") == 1  # the callback never came: recordInfo is asked
    (task,) = world.kie.creates
    assert world.kie.record_reads == [task.task_id]
    g = await world.row(g.id)
    # 60 s after submitting: the 5–10 s band.
    assert 5 <= (g.next_poll_at - world.clock()).total_seconds() <= 10
