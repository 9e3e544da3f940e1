"""The unit tier keeps its promise of no network: tests/conftest.py fails a unit test that opens
an internet socket (it belongs in tests/integration), while asyncio's own socket pair works."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.conftest import NetworkUsedInUnitTest


def test_connecting_or_listening_fails_a_unit_test():
    with socket.socket() as s, pytest.raises(NetworkUsedInUnitTest, match="connect"):
        s.connect(("127.0.0.1", 9))
    with socket.socket() as s, pytest.raises(NetworkUsedInUnitTest, match="bind"):
        s.bind(("127.0.0.1", 0))


async def test_asyncio_still_runs():
    a, b = socket.socketpair()
    a.close(), b.close()
    assert await asyncio.sleep(0, result="ran") == "ran"


def test_the_tier_comes_from_the_directory(request):
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None
