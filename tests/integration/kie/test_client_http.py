"""KieClient over real HTTP on loopback (aiohttp server): timeouts, drops, huge bodies."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from kie_client import (
    KieClient,
    KieConnectionError,
    KieResponseError,
    KieSubmissionUnknownError,
    NoLimit,
    RetryPolicy,
)
from tests.conftest import free_port
from tests.unit.kie.fixtures import API_KEY, FakeSleep, load


class Server:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.auth: list[str | None] = []
        self.mode = "ok"
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handler(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        self.auth.append(request.headers.get("Authorization"))
        await request.read()
        if self.mode == "hang":
            await asyncio.sleep(5)
        if self.mode == "drop":
            request.transport.close()
            await asyncio.sleep(1)
        if self.mode == "huge":
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            try:
                for _ in range(20):
                    await resp.write(b" " * (1024 * 1024))
            except (ConnectionResetError, RuntimeError):
                pass
            return resp
        if request.path.endswith("createTask"):
            return web.json_response(load("create_task_live"))
        return web.json_response(load("credit_live"))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handler)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def server():
    s = Server()
    await s.start()
    yield s
    await s.stop()


def client_for(url: str, sleep: FakeSleep, timeout: float = 2.0) -> KieClient:
    return KieClient(
        API_KEY, market_base_url=url, upload_base_url=url, timeout=timeout,
        retry=RetryPolicy(jitter=0.0), create_limiter=NoLimit(), status_limiter=NoLimit(),
        sleep=sleep,
    )


async def test_happy_path_sends_bearer(server):
    async with client_for(server.url, FakeSleep()) as client:
        assert (await client.create_task("m", {"prompt": "x"})).task_id
        assert str(await client.get_credits()) == "60.62"
    assert server.auth == [f"Bearer {API_KEY}"] * 2


async def test_create_read_timeout_is_unknown_after_one_request(server):
    server.mode = "hang"
    sleep = FakeSleep()
    async with client_for(server.url, sleep, timeout=0.3) as client:
        with pytest.raises(KieSubmissionUnknownError):
            await client.create_task("m", {"prompt": "x"})
    assert server.hits == ["/api/v1/jobs/createTask"] and sleep.delays == []


async def test_create_dropped_connection_is_unknown_after_one_request(server):
    server.mode = "drop"
    async with client_for(server.url, FakeSleep()) as client:
        with pytest.raises(KieSubmissionUnknownError):
            await client.create_task("m", {"prompt": "x"})
    assert len(server.hits) == 1


async def test_read_timeout_on_get_is_retried(server):
    server.mode = "hang"
    sleep = FakeSleep()
    async with client_for(server.url, sleep, timeout=0.2) as client:
        with pytest.raises(KieConnectionError):
            await client.get_credits()
    assert len(server.hits) == 4 and sleep.delays == [0.5, 1.0, 2.0]


async def test_connection_refused_create_is_retried_and_stays_definite():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    sleep = FakeSleep()
    async with client_for(url, sleep) as client:
        with pytest.raises(KieConnectionError) as info:
            await client.create_task("m", {"prompt": "x"})
    assert not isinstance(info.value, KieSubmissionUnknownError)
    assert info.value.request_sent is False
    assert sleep.delays == [0.5, 1.0, 2.0]


async def test_20mb_body_is_cut_off(server):
    server.mode = "huge"
    async with client_for(server.url, FakeSleep()) as client:
        with pytest.raises(KieResponseError, match="exceeds"):
            await client.get_credits()
