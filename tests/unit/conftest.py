"""The unit tier: no sockets, no sleeping. Every test here runs with a guard that refuses any
connection attempt and fails the test even when the refusal was caught on the way; an SQLite file
in tmp_path is allowed (no socket), real servers belong to tests/integration."""

from __future__ import annotations

import socket
from typing import Any

import pytest


# -- no sockets --------------------------------------------------------------------------------

class SocketGuard:
    """Refuses every connect and remembers it, so a test fails even where the error was caught
    and swallowed on the way (say, by the bot's error router)."""

    def __init__(self) -> None:
        self.attempts: list[Any] = []

    def refuse(self, address: Any) -> None:
        self.attempts.append(address)
        raise ConnectionRefusedError(f"the unit tier opens no connections (tried {address!r})")

    def check(self) -> None:
        if self.attempts:
            pytest.fail(f"tried to open connections: {self.attempts!r}")


@pytest.fixture(autouse=True)
def socket_guard(monkeypatch: pytest.MonkeyPatch):
    guard = SocketGuard()

    def connect(sock: socket.socket, address: Any) -> None:
        guard.refuse(address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    yield guard
    guard.check()
