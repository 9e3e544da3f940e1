"""The unit tier: no sockets, no sleeping. An SQLite file in tmp_path is allowed (no socket); real
servers belong to tests/integration.

The guards record what they refused as well as raising, because the code under test often catches
errors on the way (a pipeline pass logs and moves on; the bot's error router answers the user):
the teardown check fails the test even then.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    refused: list[str] = []

    def connect(self: socket.socket, address: object, *args: object) -> None:
        refused.append(f"connect {address!r}")
        raise ConnectionRefusedError(f"unit tests open no sockets (connect to {address!r})")

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
        refused.append(f"resolve {host!r}")
        raise OSError(f"unit tests resolve no names ({host!r})")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield refused
    assert not refused, f"the network was used: {refused}"


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """asyncio.sleep(0) (a yield) is allowed; any real wait is refused."""
    refused: list[float] = []
    yield_now = asyncio.sleep

    async def sleep(delay: float, result: object = None) -> object:
        if delay > 0:
            refused.append(delay)
            raise AssertionError(f"unit tests never sleep (asked for {delay}s); inject a clock")
        return await yield_now(0, result)

    def blocking_sleep(delay: float) -> None:
        refused.append(delay)
        raise AssertionError(f"unit tests never sleep (time.sleep({delay}))")

    monkeypatch.setattr(asyncio, "sleep", sleep)
    monkeypatch.setattr(time, "sleep", blocking_sleep)
    yield refused
    assert not refused, f"real sleeps were asked for: {refused}"
