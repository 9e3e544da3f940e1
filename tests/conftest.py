"""Shared test fixtures.

Services: Postgres and Redis are real servers (TEST_DATABASE_URL / TEST_REDIS_URL, defaulting to
this project's machines). A test that needs one is skipped with a loud reason only when the server
is unreachable *and* CI is not set; under CI=true the same situation is a failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
from urllib.parse import urlparse

import pytest

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> str:
    """Return url if the service answers; otherwise skip (locally) or fail (CI)."""
    if _reachable(url, default_port):
        return url
    reason = f"{name} service unavailable at {url}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: services must run, not skip)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Return the path of a command-line tool; skip locally or fail under CI when missing."""
    import shutil

    path = shutil.which(name)
    if path:
        return path
    reason = f"{name} tool unavailable (service unavailable: install the postgresql-client package)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: required tools must be present, not skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> str:
    return require_service("postgres", os.environ.get("TEST_DATABASE_URL", DEFAULT_PG), 5432)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("redis", os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS), 6379)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    return free_port()


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll predicate (sync or async) until truthy; return its value or raise AssertionError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
