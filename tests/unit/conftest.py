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
    """Connecting, binding or listening on an internet socket, or resolving a name, is refused.
    Unix socket pairs (asyncio's own wake-up pipe) still work."""
    refused: list[str] = []

    def guard(name: str):
        original = getattr(socket.socket, name)

        def refuse_internet(self: socket.socket, *args: object, **kwargs: object) -> object:
            if self.family in (socket.AF_INET, socket.AF_INET6):
                refused.append(f"{name} {args[0]!r}" if args else name)
                raise ConnectionRefusedError(f"unit tests open no sockets ({name} {args!r})")
            return original(self, *args, **kwargs)
        return refuse_internet

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
        refused.append(f"resolve {host!r}")
        raise OSError(f"unit tests resolve no names ({host!r})")

    for name in ("connect", "connect_ex", "bind", "listen"):
        monkeypatch.setattr(socket.socket, name, guard(name))
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
