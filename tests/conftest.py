"""Shared test fixtures and the test tiers.

Tiers: every test is marked with the tier its directory names (tests/unit → `unit`, and so on),
so `-m unit` or `-m "not e2e"` selects by tier. `make test-fast` runs the unit tier, `make test`
all four. The unit tier's guards (no network, no real sleeping) are in tests/unit/conftest.py.

Services: Postgres and Redis are real servers (TEST_DATABASE_URL / TEST_REDIS_URL, defaulting to
this project's machines). A test that needs one is skipped with a loud reason only when the server
is unreachable *and* CI is not set; under CI=true the same situation is a failure.

Postgres: a test gets a database of its own, named at random, so parallel workers (pytest-xdist)
and other checkouts sharing the server never see each other's rows. `pg_database` is cloned from
a template migrated once per session (per worker): CREATE DATABASE … TEMPLATE is a file copy,
cheaper than running the migrations again. Tests of the migrations themselves start from empty
databases (`empty_pg_database`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TIERS = ("unit", "integration", "e2e", "testkit")
TESTS = Path(__file__).resolve().parent
# Every database the suite creates starts with this; dropping refuses any other name.
PG_PREFIX = "kiebot_t_"


# -- tiers -------------------------------------------------------------------------------------

def tier_of(path: Path) -> str:
    relative = Path(path).resolve().relative_to(TESTS)
    tier = relative.parts[0]
    if tier not in TIERS:
        raise pytest.UsageError(f"{path}: tests live in one of tests/{{{','.join(TIERS)}}}/")
    return tier


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier_of(item.path))


# -- services ----------------------------------------------------------------------------------

def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(name: str, url: str, default_port: int) -> str:
    """Return url if the service answers; otherwise skip (locally) or fail (CI)."""
    if _reachable(url, default_port):
        return url
    reason = f"{name} service unavailable at {url}"
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: services must run, not skip)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Return the path of a command-line tool; skip locally or fail under CI when missing."""
    import shutil

    path = shutil.which(name)
    if path:
        return path
    reason = f"{name} tool unavailable (service unavailable: install the postgresql-client package)"
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: required tools must be present, not skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> str:
    return require_service("postgres", os.environ.get("TEST_DATABASE_URL", DEFAULT_PG), 5432)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("redis", os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS), 6379)


# -- Postgres databases of one's own ------------------------------------------------------------

def _admin_dsn(pg_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database_url(pg_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(pg_url).set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False)


async def create_pg_database(pg_url: str, *, template: str | None = None) -> str:
    """Create a database named at random (empty, or a copy of `template`); return its URL."""
    import asyncpg

    name = f"{PG_PREFIX}{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(_admin_dsn(pg_url))
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await admin.close()
    return _database_url(pg_url, name)


async def drop_pg_database(pg_url: str, url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    assert name and name.startswith(PG_PREFIX), f"refusing to drop {name!r}: not one of ours"
    admin = await asyncpg.connect(_admin_dsn(pg_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_pg_database(pg_url: str, *, template: str | None = None) -> AsyncIterator[str]:
    url = await create_pg_database(pg_url, template=template)
    try:
        yield url
    finally:
        await drop_pg_database(pg_url, url)


def run_outside_loop(coro):
    """Run a coroutine to completion on a loop of its own (in a helper thread, so it works even
    when called while some other event loop is running in this thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_template(pg_url) -> str:
    """The name of a database migrated to head once for this session (and xdist worker)."""
    from sqlalchemy.engine import make_url

    from migrations.runner import ensure_schema

    async def build() -> str:
        url = await create_pg_database(pg_url)
        try:
            await ensure_schema(url)  # disposes its engine: no connection stays to block copies
        except BaseException:
            await drop_pg_database(pg_url, url)
            raise
        return url

    url = run_outside_loop(build())
    yield make_url(url).database
    run_outside_loop(drop_pg_database(pg_url, url))


@pytest.fixture
async def pg_database(pg_url, pg_template) -> AsyncIterator[str]:
    """The URL of a fresh database at the head migration, dropped afterwards."""
    async with fresh_pg_database(pg_url, template=pg_template) as url:
        yield url


@pytest.fixture
async def empty_pg_database(pg_url) -> AsyncIterator[str]:
    """The URL of a fresh database with no tables at all, dropped afterwards."""
    async with fresh_pg_database(pg_url) as url:
        yield url


# -- small helpers -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    return free_port()


async def wait_until(predicate, timeout: float = 30.0, interval: float = 0.02):
    """Poll predicate (sync or async) until truthy; return its value or raise AssertionError.
    The timeout only bounds a hang: the wait ends as soon as the predicate holds."""
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
