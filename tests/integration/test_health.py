"""/healthz (liveness) and /readyz (readiness) on loopback, over real parts: SQLite, Redis, the
local media folder and the KIE emulator — and each of them broken in turn. Also the start's
refusal of an unreachable Redis (kiebot.app.check_redis)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web
from kie_client.client import KieClient
from kie_client.retry import RetryPolicy
from migrations.runner import ensure_schema
from redis.asyncio import Redis
from storage.db import create_engine
from storage.media import LocalMediaStore
from storage.repository import Repository

from bot.config import SettingsError
from bot.server import build_web_app
from kiebot.app import READY_KIE_TTL_S, DependencyUnavailableError, build_readiness, check_redis
from testkit.kie import KieEmulator
from tests.conftest import free_port

KIE_KEY = "health-kie-key-0123456789"
REDIS_PASSWORD = "hunter2-redis-password"


@pytest.fixture
async def parts(tmp_path, redis_url):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'kiebot.sqlite3'}")
    await ensure_schema(engine)
    emulator = KieEmulator(KIE_KEY)
    await emulator.start()
    redis = Redis.from_url(redis_url)
    clients: list = [redis]

    def kie(key: str = KIE_KEY, base: str | None = None) -> KieClient:
        client = KieClient(key, market_base_url=base or emulator.market_url,
                           upload_base_url=emulator.upload_url, timeout=2.0,
                           retry=RetryPolicy(max_attempts=1))
        clients.append(client)
        return client

    yield {"repository": Repository(engine), "media_root": tmp_path / "media",
           "emulator": emulator, "kie": kie, "redis": redis}
    for client in clients:
        await client.aclose()
    await emulator.stop()
    await engine.dispose()


async def _serve(app: web.Application):
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def _get(base: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(base + path) as resp:
        return resp.status, await resp.text()


def _app(parts, *, redis=None, kie=None, media=None, health_only=False) -> web.Application:
    media = media or LocalMediaStore(parts["media_root"], "http://127.0.0.1")
    readiness = build_readiness(repository=parts["repository"], media=media,
                                kie=kie or parts["kie"](), redis=redis or parts["redis"])
    return build_web_app(generations=None, repository=parts["repository"],
                         callback_secret="s" * 32, hmac_key=None, media=media,
                         health_only=health_only, readiness=readiness)


def _kie_reads(emulator: KieEmulator) -> int:
    return sum(1 for r in emulator.requests if r.path.endswith("/chat/credit"))


async def test_ready_with_every_part_and_a_probe_storm_asks_kie_once(parts):
    runner, base = await _serve(_app(parts))
    try:
        statuses = await asyncio.gather(*(_get(base, "/readyz") for _ in range(40)))
        assert {status for status, _ in statuses} == {200}
        body = json.loads(statuses[0][1])
        assert body["ok"] is True
        assert body["checks"] == {"database": "ok", "redis": "ok", "media": "ok", "kie": "ok"}
        assert body["queues"]["queued"] == 0 and body["inbox_unhandled"] == 0
        # 40 probes at once, and again right after: KIE was asked once (kept READY_KIE_TTL_S).
        await _get(base, "/readyz")
        assert _kie_reads(parts["emulator"]) == 1 and READY_KIE_TTL_S >= 5
        # The media probe leaves nothing behind.
        assert list(parts["media_root"].iterdir()) == []
        assert await _get(base, "/healthz") == (200, '{"ok": true}')
    finally:
        await runner.cleanup()


async def test_each_failing_part_is_named_with_503_and_no_secret(parts, unused_port):
    # Redis on a closed port (with a password in its URL), a file where MEDIA_DIR should be,
    # and KIE answering 401 to a wrong key.
    redis = Redis.from_url(f"redis://:{REDIS_PASSWORD}@127.0.0.1:{unused_port}/0")
    parts["media_root"].write_bytes(b"")
    wrong_key = "wrong-kie-key-abcdefghijkl"
    runner, base = await _serve(_app(parts, redis=redis, kie=parts["kie"](wrong_key)))
    try:
        status, text = await _get(base, "/readyz")
        assert status == 503
        body = json.loads(text)
        assert body["ok"] is False
        assert body["failing"] == ["redis", "media", "kie"]
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("failing: ")
        assert body["checks"]["media"] in ("failing: FileExistsError",
                                           "failing: NotADirectoryError")
        assert body["checks"]["kie"].startswith("failing: Kie")
        for secret in (REDIS_PASSWORD, wrong_key, KIE_KEY, str(unused_port)):
            assert secret not in text
        # Liveness does not depend on any of them: the process is up.
        assert (await _get(base, "/healthz"))[0] == 200
    finally:
        await runner.cleanup()
        await redis.aclose()


async def test_kie_unreachable_and_database_down_are_named(parts, tmp_path, unused_port):
    kie = parts["kie"](base=f"http://127.0.0.1:{unused_port}")
    app = _app(parts, kie=kie)
    await parts["repository"].engine.dispose()
    (tmp_path / "kiebot.sqlite3").unlink()
    (tmp_path / "kiebot.sqlite3").mkdir()  # the database file is gone: a folder in its place
    runner, base = await _serve(app)
    try:
        status, text = await _get(base, "/readyz")
        body = json.loads(text)
        assert status == 503 and body["failing"] == ["database", "kie"]
        assert "queues" not in body
    finally:
        await runner.cleanup()


async def test_a_worker_serves_both_and_nothing_else(parts):
    runner, base = await _serve(_app(parts, health_only=True))
    try:
        assert (await _get(base, "/healthz"))[0] == 200
        status, text = await _get(base, "/readyz")
        assert status == 200 and json.loads(text)["checks"]["kie"] == "ok"
        async with aiohttp.ClientSession() as http, \
                http.post(base + "/kie/callback/1?token=x", json={}) as resp:
            assert resp.status == 404
    finally:
        await runner.cleanup()


async def test_start_refuses_an_unreachable_redis_in_one_line(unused_port):
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{unused_port}/0"
    redis = Redis.from_url(url)
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    try:
        with pytest.raises(DependencyUnavailableError) as caught:
            await check_redis(redis, url, sleep=no_wait)
    finally:
        await redis.aclose()
    message = str(caught.value)
    assert isinstance(caught.value, SettingsError)  # `kiebot run` prints it and exits 2
    assert caught.value.setting == "REDIS_URL" and message.startswith("REDIS_URL: ")
    assert "\n" not in message and REDIS_PASSWORD not in message and ":***@" in message
    assert waits == [1.0, 2.0]  # tried three times before refusing


async def test_start_accepts_a_reachable_redis(redis_url):
    redis = Redis.from_url(redis_url)
    try:
        await check_redis(redis, redis_url)
    finally:
        await redis.aclose()
