"""KieClient against the running KieEmulator over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from aiohttp import web

from kie_client import (
    KieAuthError,
    KieClient,
    KieInsufficientCreditsError,
    KieSubmissionUnknownError,
    KieTaskNotFoundError,
    KieUploadError,
    KieValidationError,
    NoLimit,
    RetryPolicy,
    TaskState,
    parse_callback,
    verify_webhook_signature,
)
from testkit.kie import KieEmulator, StateDelays
from tests.unit.kie.fixtures import FakeSleep

KEY = "emulator-key-123"
HMAC_KEY = "emulator-hmac-key"
SEEDREAM = ("seedream/4.5-text-to-image",
            {"prompt": "a red fox in snow", "aspect_ratio": "16:9", "quality": "basic"})


class Receiver:
    """Collects callbacks the emulator POSTs."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((await request.read(), dict(request.headers)))
        return web.json_response({"code": 200, "msg": "success"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/kie/callback/{gid}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def emulator():
    emu = KieEmulator(KEY, hmac_key=HMAC_KEY, delays=StateDelays(0.05, 0.05, 0.05),
                      credits=Decimal("500.5"))
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def receiver():
    rec = Receiver()
    await rec.start()
    yield rec
    await rec.runner.cleanup()


def client_for(emu: KieEmulator, key: str = KEY, **kw) -> KieClient:
    kw.setdefault("sleep", FakeSleep())
    kw.setdefault("retry", RetryPolicy(jitter=0.0))
    return KieClient(key, market_base_url=emu.market_url, upload_base_url=emu.upload_url,
                     timeout=kw.pop("timeout", 5.0), create_limiter=NoLimit(), **kw)


async def poll_until_final(client: KieClient, task_id: str):
    seen = []
    for _ in range(100):
        record = await client.get_task(task_id)
        seen.append(record.state)
        if record.is_final:
            return record, seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never finished: {seen}")


async def test_full_flow(emulator, receiver):
    async with client_for(emulator) as client:
        before = await client.get_credits()
        assert before == Decimal("500.5")
        created = await client.create_task(*SEEDREAM, callback_url=receiver.url + "/kie/callback/7")
        assert created.task_id in emulator.tasks and created.record_id == created.task_id

        record, seen = await poll_until_final(client, created.task_id)
        assert record.state is TaskState.SUCCESS and seen[0] is not TaskState.SUCCESS
        assert record.model == SEEDREAM[0] and record.input == SEEDREAM[1]
        assert len(record.result_urls) == 1 and record.create_time and record.complete_time
        assert record.credits_consumed is not None and record.credits_consumed > 0

        link = await client.get_download_url(record.result_urls[0])
        assert link.startswith(emulator.files_url)
        after = await client.get_credits()
        assert after == before - Decimal(str(record.credits_consumed))

        await emulator.drain_callbacks()
    assert len(receiver.calls) == 1
    body, headers = receiver.calls[0]
    cb = parse_callback(body)
    assert cb.task_id == created.task_id and cb.code == 200 and cb.state is TaskState.SUCCESS
    assert cb.record.result_urls == record.result_urls
    assert verify_webhook_signature(HMAC_KEY, cb.task_id, headers.get("X-Webhook-Timestamp"),
                                    headers.get("X-Webhook-Signature"))
    assert not verify_webhook_signature("wrong", cb.task_id, headers.get("X-Webhook-Timestamp"),
                                        headers.get("X-Webhook-Signature"))


async def test_failed_task_and_501_callback(emulator, receiver):
    emulator.faults.fail_next = 1
    async with client_for(emulator) as client:
        created = await client.create_task(*SEEDREAM, callback_url=receiver.url + "/kie/callback/8")
        record, _ = await poll_until_final(client, created.task_id)
        await emulator.drain_callbacks()
    assert record.state is TaskState.FAIL and record.fail_code == "500"
    cb = parse_callback(receiver.calls[0][0])
    assert cb.code == 501 and cb.state is TaskState.FAIL


async def test_each_upload(emulator):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    async with client_for(emulator) as client:
        streamed = await client.upload_stream(png, upload_path="images/user-uploads",
                                              file_name="a.png", mime_type="image/png")
        b64 = await client.upload_base64(png, upload_path="images", file_name="b.png",
                                         mime_type="image/png")
        by_url = await client.upload_url(streamed.download_url, upload_path="images",
                                         file_name="c.png")
        with pytest.raises(KieUploadError):
            await client.upload_base64("***not base64***", upload_path="images")
    for up, name in ((streamed, "a.png"), (b64, "b.png"), (by_url, "c.png")):
        assert up.file_name == name and up.download_url.startswith("http://127.0.0.1")
        assert up.file_size == len(png)
    assert streamed.mime_type == "image/png"


async def test_errors_from_emulator(emulator):
    async with client_for(emulator, key="wrong-key") as client:
        with pytest.raises(KieAuthError):
            await client.get_credits()
    async with client_for(emulator) as client:
        with pytest.raises(KieTaskNotFoundError):
            await client.get_task("0" * 32)
        with pytest.raises(KieValidationError, match="aspect_ratio"):
            await client.create_task(SEEDREAM[0], {"prompt": "a fox", "quality": "basic"})
        emulator.credits = Decimal(0)
        with pytest.raises(KieInsufficientCreditsError):
            await client.create_task(*SEEDREAM)
    assert not emulator.tasks


async def test_create_429_retried_and_hang_is_unknown(emulator):
    emulator.faults.create_errors = 2
    emulator.faults.create_error_code = 429
    sleep = FakeSleep()
    async with client_for(emulator, sleep=sleep, timeout=0.5) as client:
        created = await client.create_task(*SEEDREAM)
        assert len(sleep.delays) == 2 and created.task_id in emulator.tasks

        emulator.faults.hang_creates = 1
        emulator.faults.hang_seconds = 5.0
        with pytest.raises(KieSubmissionUnknownError):
            await client.create_task(*SEEDREAM)
    assert len(emulator.tasks) == 2  # the hung create did create (and bill) a task


async def test_mirrored_http_status_maps_the_same():
    emu = KieEmulator(KEY, mirror_http_status=True, delays=StateDelays(0.05, None, None))
    await emu.start()
    try:
        async with client_for(emu) as client:
            with pytest.raises(KieTaskNotFoundError) as info:
                await client.get_task("f" * 32)
            assert info.value.status_code == 422
            created = await client.create_task(*SEEDREAM)
            record, _ = await poll_until_final(client, created.task_id)
            assert record.state is TaskState.SUCCESS
    finally:
        await emu.stop()


async def test_create_500_is_unknown_outcome_after_one_request(emulator):
    """A 5xx from createTask may hide a created (and billed) task: never sent again."""
    emulator.faults.create_errors = 1
    emulator.faults.create_error_code = 500
    sleep = FakeSleep()
    async with client_for(emulator, sleep=sleep) as client:
        before = sum(1 for r in emulator.requests if r.path.endswith("/jobs/createTask"))
        with pytest.raises(KieSubmissionUnknownError) as info:
            await client.create_task(*SEEDREAM)
        after = sum(1 for r in emulator.requests if r.path.endswith("/jobs/createTask"))
    assert after - before == 1 and sleep.delays == []
    assert info.value.body_code == 500


async def test_lagging_record_info_is_seen_through_the_client(emulator):
    """recordInfo may trail the real state; the client reports what KIE shows, not a guess."""
    emulator.faults.record_lag = 0.6
    async with client_for(emulator) as client:
        created = await client.create_task(*SEEDREAM)
        await emulator.wait_final(created.task_id)
        lagging = await client.get_task(created.task_id)
        assert lagging.state is not TaskState.SUCCESS and not lagging.result_urls
        record, _ = await poll_until_final(client, created.task_id)
    assert record.state is TaskState.SUCCESS and record.result_urls
