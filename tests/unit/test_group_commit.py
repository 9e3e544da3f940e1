"""GroupCommit: callbacks arriving together share one write; each caller gets its own result
only after that write, and a failed write fails every caller of its batch (they answer 503)."""

from __future__ import annotations

import asyncio

import pytest

from bot.group_commit import GroupCommit
from storage.repository import CallbackNote, CallbackWrite


def _note(i: int) -> CallbackNote:
    return CallbackNote(i, f"t{i}", "success", (f"https://h/{i}.png",))


async def test_callbacks_submitted_together_are_written_in_one_batch_in_order():
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def write(notes):
        batches.append([n.generation_id for n in notes])
        await release.wait()  # the write in progress: later callbacks gather meanwhile
        return [CallbackWrite.storing if n.generation_id % 2 else CallbackWrite.woken
                for n in notes]

    group = GroupCommit(write, name="test")
    first = asyncio.create_task(group.submit(_note(1)))
    while not batches:  # the first write has started
        await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(_note(i))) for i in range(2, 7)]
    await asyncio.sleep(0)
    assert not first.done()  # nobody is answered before their write
    release.set()
    assert await first is CallbackWrite.storing
    assert await asyncio.gather(*rest) == [CallbackWrite.woken, CallbackWrite.storing,
                                           CallbackWrite.woken, CallbackWrite.storing,
                                           CallbackWrite.woken]
    assert batches == [[1], [2, 3, 4, 5, 6]]


async def test_a_failed_write_fails_each_caller_of_its_batch_and_the_next_batch_goes_on():
    calls = 0

    async def write(notes):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database down")
        return [CallbackWrite.woken for _ in notes]

    group = GroupCommit(write, name="test")
    failed = await asyncio.gather(*(group.submit(_note(i)) for i in range(3)),
                                  return_exceptions=True)
    assert [type(e) for e in failed] == [ConnectionError] * 3
    assert await group.submit(_note(9)) is CallbackWrite.woken


async def test_batches_are_capped():
    sizes: list[int] = []

    async def write(notes):
        sizes.append(len(notes))
        return [CallbackWrite.woken for _ in notes]

    group = GroupCommit(write, name="test", max_batch=4)
    assert len(await asyncio.gather(*(group.submit(_note(i)) for i in range(10)))) == 10
    assert sizes == [4, 4, 2]


async def test_a_lone_caller_is_answered_in_the_loop_turn_after_its_own():
    """Nothing being written: the caller writes its batch in its own task after one turn of the
    loop (for others arriving in the same turn to join), and its answer does not wait further
    turns for a drain task to start and for the result to come back."""

    async def write(notes):  # a write that never has to wait (inline SQLite)
        return [CallbackWrite.storing for _ in notes]

    group = GroupCommit(write, name="test")
    submit = group.submit(_note(1))
    assert submit.send(None) is None  # the one turn (asyncio.sleep(0))
    with pytest.raises(StopIteration) as done:
        submit.send(None)
    assert done.value.value is CallbackWrite.storing
    assert group.waiting == 0


async def test_a_batch_whose_writer_is_cancelled_mid_write_is_written_by_the_next():
    """The leading caller goes away while its batch is being written: the others of its batch
    (and its own item) are written again by a drain task, and every remaining caller answered."""
    started = asyncio.Event()
    written: list[list[int]] = []

    async def write(notes):
        if not written and not started.is_set():
            started.set()
            await asyncio.Event().wait()  # hangs until cancelled
        written.append([n.generation_id for n in notes])
        return [CallbackWrite.woken for _ in notes]

    group = GroupCommit(write, name="test")
    leader = asyncio.create_task(group.submit(_note(1)))
    others = [asyncio.create_task(group.submit(_note(i))) for i in (2, 3)]
    await started.wait()
    leader.cancel()
    assert await asyncio.gather(*others) == [CallbackWrite.woken] * 2
    assert written == [[1, 2, 3]]


@pytest.mark.parametrize("cancel_first", [True, False])
async def test_a_caller_that_goes_away_does_not_break_the_batch(cancel_first):
    release = asyncio.Event()

    async def write(notes):
        await release.wait()
        return [CallbackWrite.woken for _ in notes]

    group = GroupCommit(write, name="test")
    gone = asyncio.create_task(group.submit(_note(1)))
    stays = asyncio.create_task(group.submit(_note(2)))
    await asyncio.sleep(0)
    (gone if cancel_first else stays).cancel()
    release.set()
    survivor = stays if cancel_first else gone
    assert await survivor is CallbackWrite.woken
