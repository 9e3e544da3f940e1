"""The tier's promises hold: a test here cannot reach the network or wait for real time."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest


def test_a_socket_connect_is_refused_and_recorded(no_sockets):
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(OSError):
        socket.create_connection(("example.com", 80))
    assert no_sockets == ["connect ('127.0.0.1', 9)", "resolve 'example.com'"]
    no_sockets.clear()  # seen: the teardown would otherwise fail this test


async def test_a_real_sleep_is_refused_but_a_yield_is_not(no_real_sleep):
    await asyncio.sleep(0)
    with pytest.raises(AssertionError, match="never sleep"):
        await asyncio.sleep(0.01)
    with pytest.raises(AssertionError, match="never sleep"):
        time.sleep(0.01)
    assert no_real_sleep == [0.01, 0.01]
    no_real_sleep.clear()


async def test_per_chat_pacing_moves_the_fake_clock_not_the_real_one(world):
    """Two results for one chat within a second: ChatSender's 1/s pacing sleeps on the clock."""
    first = await world.start(request_key="card-1")
    second = await world.start(request_key="card-2")
    assert await world.run("submit") == 2
    for g, task in zip((first, second), world.kie.creates, strict=True):
        world.kie.succeed(task.task_id)
        await world.callback(g.id, task.task_id)
    assert await world.run("poll") == 2 and await world.run("store") == 2
    started = world.clock()
    assert await world.run("deliver") == 2
    (t1, _), (t2, _) = world.bot.sent
    assert (t2 - t1).total_seconds() >= 1.0 and world.clock.sleeps
    assert world.clock() > started
