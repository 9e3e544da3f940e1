"""The unit tier's promise: no sockets. The autouse guard refuses every connect and fails the test
at teardown even when the refusal was caught on the way."""

from __future__ import annotations

import asyncio
import socket

import pytest


async def test_the_guard_refuses_connections_and_reports_them(socket_guard):
    with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", 9)  # asyncio connects through the same call
    assert len(socket_guard.attempts) == 2

    # A refusal that some code swallowed is still a failure of the test.
    with pytest.raises(pytest.fail.Exception, match="tried to open connections"):
        socket_guard.check()
    socket_guard.attempts.clear()  # this test made them on purpose
