"""The unit tier's promise: no sockets, no name lookups, no real sleeping. The autouse guards
(tests/unit/conftest.py) refuse each and would fail the test at teardown even when the refusal was
caught on the way; these tests make the refusals on purpose and then clear the records."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest


async def test_connections_are_refused_and_recorded(no_sockets):
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", 9)  # asyncio resolves, then connects
    with pytest.raises(OSError):
        socket.getaddrinfo("example.org", 443)
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
    assert len(no_sockets) == 4
    no_sockets.clear()  # made on purpose


async def test_asyncio_runs_on_its_unix_socket_pair(no_sockets):
    a, b = socket.socketpair()
    a.close(), b.close()
    assert await asyncio.sleep(0, result="ran") == "ran"
    assert no_sockets == []


def test_the_tier_comes_from_the_directory(request):
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None


async def test_real_sleeps_are_refused_and_a_yield_is_not(no_real_sleep):
    await asyncio.sleep(0)
    with pytest.raises(AssertionError, match="never sleep"):
        await asyncio.sleep(0.01)
    with pytest.raises(AssertionError, match="never sleep"):
        time.sleep(0.01)
    assert no_real_sleep == [0.01, 0.01]
    no_real_sleep.clear()  # made on purpose
