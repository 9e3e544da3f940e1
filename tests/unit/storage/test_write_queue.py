"""WriteQueue: SQLite writers of one process take turns; urgent ones (an HTTP answer waits on
them) go ahead of the rest, and a waiter that is cancelled never strands the queue."""

from __future__ import annotations

import asyncio

import pytest

from storage.db import WriteQueue


async def _writer(queue: WriteQueue, name: str, log: list[str], *, urgent: bool = False,
                  hold: asyncio.Event | None = None) -> None:
    async with queue.hold(urgent=urgent):
        log.append(name)
        if hold is not None:
            await hold.wait()


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_writers_take_turns_in_arrival_order():
    queue, log, hold = WriteQueue(), [], asyncio.Event()
    first = asyncio.create_task(_writer(queue, "first", log, hold=hold))
    await _until(lambda: log == ["first"])
    rest = [asyncio.create_task(_writer(queue, f"w{i}", log)) for i in range(3)]
    await asyncio.sleep(0)
    assert log == ["first"] and queue.locked()
    hold.set()
    await asyncio.gather(first, *rest)
    assert log == ["first", "w0", "w1", "w2"]
    assert not queue.locked()


async def test_an_urgent_writer_goes_ahead_of_waiting_pipeline_writers():
    queue, log, hold = WriteQueue(), [], asyncio.Event()
    first = asyncio.create_task(_writer(queue, "stage", log, hold=hold))
    await _until(lambda: log == ["stage"])
    later = [asyncio.create_task(_writer(queue, f"stage{i}", log)) for i in range(3)]
    await asyncio.sleep(0)
    callback = asyncio.create_task(_writer(queue, "callback", log, urgent=True))
    await asyncio.sleep(0)
    hold.set()
    await asyncio.gather(first, callback, *later)
    assert log == ["stage", "callback", "stage0", "stage1", "stage2"]


@pytest.mark.parametrize("handed_over", [False, True])
async def test_a_cancelled_waiter_never_strands_the_queue(handed_over):
    queue, log = WriteQueue(), []
    async with queue.hold():
        gone = asyncio.create_task(_writer(queue, "gone", log))
        after = asyncio.create_task(_writer(queue, "after", log))
        await asyncio.sleep(0)  # both wait
        if not handed_over:
            gone.cancel()
    # Leaving the block handed the queue to the first waiter; with handed_over it is cancelled
    # before it could run, and must pass the queue on instead of keeping it.
    if handed_over:
        gone.cancel()
    await after
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert log == ["after"]
    assert not queue.locked()
