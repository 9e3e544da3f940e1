"""Emulator callbacks and fault knobs, observed over real HTTP at a small aiohttp receiver."""

from __future__ import annotations

import asyncio
import io
import json
import time

import httpx
import pytest
from aiohttp import web
from PIL import Image

from kie_client.callbacks import parse_callback, verify_webhook_signature
from testkit.kie import CallbackRetry, KieEmulator, StateDelays, sign

FAST = StateDelays(0.02, 0.02, 0.02)
KEY = "emu-key-456"
HMAC = "webhook-hmac-key-789"
SEEDREAM = {"model": "seedream/4.5-text-to-image",
            "input": {"prompt": "a lighthouse", "aspect_ratio": "1:1", "quality": "basic"}}


class Receiver:
    """Collects callbacks; answers with `statuses` in turn (then 200)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.calls.append({"headers": dict(request.headers), "body": await request.read(),
                               "query": dict(request.query), "at": time.monotonic()})
            if self.hold:
                await asyncio.sleep(self.hold)
            status = self.statuses.pop(0) if self.statuses else 200
            return web.json_response({"code": 200, "msg": "success"}, status=status)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def receiver(unused_port):
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/kie/callback/{gid}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()
    rec.url = f"http://127.0.0.1:{unused_port}/kie/callback/7?token=tok"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def emu():
    emulator = KieEmulator(KEY, hmac_key=HMAC, delays=FAST, callback_backoff=0.01)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def http(emu):
    async with httpx.AsyncClient(base_url=emu.market_url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


async def create(http, receiver=None, body=SEEDREAM) -> str:
    payload = {**body, "callBackUrl": receiver.url} if receiver else body
    answer = (await http.post("/api/v1/jobs/createTask", json=payload)).json()
    assert answer["code"] == 200, answer
    return answer["data"]["taskId"]


async def settle(emu, task_id):
    await emu.wait_final(task_id)
    await emu.drain_callbacks()


async def test_success_callback_is_signed_and_parses(emu, http, receiver):
    task_id = await create(http, receiver)
    await settle(emu, task_id)
    (call,) = receiver.calls
    assert call["headers"]["Content-Type"] == "application/json" and call["query"] == {"token": "tok"}
    body = json.loads(call["body"])
    assert body["code"] == 200 and body["msg"] == "Playground task completed successfully."
    data = body["data"]
    assert data["taskId"] == task_id and data["state"] == "success" and data["creditsConsumed"] == 6.5
    assert json.loads(data["resultJson"])["resultUrls"] == emu.tasks[task_id].result_urls
    assert json.loads(data["param"])["callBackUrl"] == receiver.url
    timestamp = call["headers"]["X-Webhook-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 5
    assert call["headers"]["X-Webhook-Signature"] == sign(HMAC, task_id, timestamp)
    assert verify_webhook_signature(HMAC, task_id, timestamp, call["headers"]["X-Webhook-Signature"])
    assert not verify_webhook_signature("other-key", task_id, timestamp, call["headers"]["X-Webhook-Signature"])
    parsed = parse_callback(call["body"])
    assert parsed.task_id == task_id and parsed.code == 200


async def test_unsigned_without_hmac_key(receiver):
    async with KieEmulator(KEY, delays=FAST) as emulator, httpx.AsyncClient(
        base_url=emulator.market_url, headers={"Authorization": f"Bearer {KEY}"}
    ) as client:
        task_id = await create(client, receiver)
        await settle(emulator, task_id)
    (call,) = receiver.calls
    assert "X-Webhook-Signature" not in call["headers"] and "X-Webhook-Timestamp" not in call["headers"]
    assert HMAC not in repr(emulator) and KEY not in repr(emulator)


async def test_fail_next_task(emu, http, receiver):
    emu.faults.fail_next = 1
    emu.faults.fail_msg = "Invalid prompt: prohibited content"
    failed = await create(http, receiver)
    await settle(emu, failed)
    ok = await create(http, receiver)
    await settle(emu, ok)
    record = (await http.get("/api/v1/jobs/recordInfo", params={"taskId": failed})).json()
    assert record["code"] == 200
    data = record["data"]
    assert data["state"] == "fail" and data["failCode"] == "500" and data["resultJson"] == ""
    assert data["failMsg"] == "Invalid prompt: prohibited content" and "creditsConsumed" not in data
    assert data["costTime"] is not None and data["completeTime"] is not None
    first = json.loads(receiver.calls[0]["body"])
    assert first["code"] == 501 and first["msg"] == "Playground task failed."
    assert first["data"]["state"] == "fail" and first["data"]["resultJson"] is None
    assert first["data"]["failCode"] == "500"
    assert json.loads(receiver.calls[1]["body"])["data"]["state"] == "success"
    assert emu.faults.fail_next == 0 and emu.credits == 1000 - 6.5  # the failed task was not billed
    assert (await http.get(f"{emu.files_url}/r/{failed}/0.png")).status_code == 404


async def test_fail_a_model(emu, http):
    emu.faults.fail_models = {"kling-2.6/text-to-video"}
    emu.faults.fail_code, emu.faults.fail_msg = "422", "content rejected"
    kling = await create(http, body={"model": "kling-2.6/text-to-video",
                                     "input": {"prompt": "p", "aspect_ratio": "1:1", "duration": "5", "sound": False}})
    image = await create(http)
    await emu.wait_final(kling)
    await emu.wait_final(image)
    assert (emu.tasks[kling].state, emu.tasks[kling].fail_code) == ("fail", "422")
    assert emu.tasks[image].state == "success"


async def test_callback_retried_on_non_2xx_then_delivered(emu, http, receiver):
    receiver.statuses = [500, 503]
    task_id = await create(http, receiver)
    await settle(emu, task_id)
    assert len(receiver.calls) == 3
    assert [a.status for a in emu.callbacks] == [500, 503, 200]


async def test_callback_gives_up_after_three_retries(emu, http, receiver):
    receiver.statuses = [500] * 10
    task_id = await create(http, receiver)
    await settle(emu, task_id)
    assert len(receiver.calls) == 4 and [a.attempt for a in emu.callbacks] == [1, 2, 3, 4]


async def test_callback_retry_schedule_is_a_knob_read_when_the_callback_is_sent(emu, http, receiver):
    receiver.statuses = [500] * 10
    emu.callback_retry = CallbackRetry(retries=6, backoff=0.01, max_backoff=0.02)
    first = await create(http, receiver)
    await settle(emu, first)
    emu.callback_retry = CallbackRetry(retries=0)
    second = await create(http, receiver)
    await settle(emu, second)
    attempts = {t: [a.attempt for a in emu.callbacks if a.task_id == t] for t in (first, second)}
    assert attempts == {first: [1, 2, 3, 4, 5, 6, 7], second: [1]}
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.calls[:7], receiver.calls[1:7])]
    assert min(gaps) >= 0.01  # each retry waited its backoff first
    assert CallbackRetry(5, 1.0, 3.0).waits() == [1.0, 2.0, 3.0, 3.0, 3.0]


async def test_callback_to_closed_port_is_logged(emu, http, unused_port):
    body = {**SEEDREAM, "callBackUrl": f"http://127.0.0.1:{unused_port}/cb"}
    task_id = (await http.post("/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"]
    await settle(emu, task_id)
    assert len(emu.callbacks) == 4 and all(a.status is None and a.error for a in emu.callbacks)


async def test_drop_callback(emu, http, receiver):
    emu.faults.drop_callbacks = 1
    dropped = await create(http, receiver)
    await settle(emu, dropped)
    assert receiver.calls == [] and emu.callbacks[0].dropped
    kept = await create(http, receiver)
    await settle(emu, kept)
    assert [json.loads(c["body"])["data"]["taskId"] for c in receiver.calls] == [kept]


async def test_duplicate_callbacks_arrive_concurrently(emu, http, receiver):
    emu.faults.callback_copies = 3
    receiver.hold = 0.2  # a sequential sender would never have 3 requests open at once
    task_id = await create(http, receiver)
    await settle(emu, task_id)
    assert len(receiver.calls) == 3 and receiver.max_in_flight == 3
    assert {json.loads(c["body"])["data"]["taskId"] for c in receiver.calls} == {task_id}


async def test_delayed_callback(emu, http, receiver):
    emu.faults.callback_delay = 0.3
    task_id = await create(http, receiver)
    await emu.wait_final(task_id)
    finished = time.monotonic()
    await emu.drain_callbacks()
    assert receiver.calls[0]["at"] - finished >= 0.25


@pytest.mark.parametrize("code", [429, 500])
async def test_create_errors_for_next_n(emu, http, code):
    emu.faults.create_errors, emu.faults.create_error_code = 2, code
    for _ in range(2):
        answer = (await http.post("/api/v1/jobs/createTask", json=SEEDREAM)).json()
        assert answer["code"] == code
    assert not emu.tasks
    await create(http)
    assert len(emu.tasks) == 1


async def test_hung_create_still_creates_the_task(emu, receiver):
    emu.faults.hang_creates, emu.faults.hang_seconds = 1, 5.0
    async with httpx.AsyncClient(base_url=emu.market_url, headers={"Authorization": f"Bearer {KEY}"},
                                 timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/api/v1/jobs/createTask", json={**SEEDREAM, "callBackUrl": receiver.url})
        (task_id,) = emu.tasks
        await emu.wait_final(task_id)
        await emu.drain_callbacks()
        assert json.loads(receiver.calls[0]["body"])["data"]["taskId"] == task_id
        assert emu.faults.hang_creates == 0
        await create(client)  # later creates answer normally


async def test_expired_result_urls(emu, http):
    task_id = await create(http)
    await emu.wait_final(task_id)
    url = emu.tasks[task_id].result_urls[0]
    emu.faults.expire_results = True
    assert (await http.get(url)).status_code == 403
    fresh = (await http.post("/api/v1/common/download-url", json={"url": url})).json()["data"]
    response = await http.get(fresh)
    assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"


async def test_record_lag():
    now = [100.0]
    emulator = KieEmulator(KEY, delays=StateDelays(30, None, None), clock=lambda: now[0])
    async with emulator, httpx.AsyncClient(base_url=emulator.market_url,
                                           headers={"Authorization": f"Bearer {KEY}"}) as client:
        task_id = await create(client)
        emulator.faults.record_lag = 3
        now[0] = 105
        emulator.finish(emulator.tasks[task_id], fail=False)

        async def state():
            now[0] += 0.5  # also keeps recordInfo under its per-second limit
            return (await client.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})).json()["data"]["state"]

        assert await state() == "waiting"  # 105.5: still showing the state from 3 s ago
        now[0] = 107.0
        assert await state() == "waiting"  # 107.5 - 3 < 105
        now[0] = 107.6
        assert await state() == "success"  # 108.1 - 3 ≥ 105
        emulator.faults.record_lag = 0


@pytest.mark.parametrize(
    ("body", "ctype"),
    [(SEEDREAM, "image/png"),
     ({"model": "bytedance/v1-pro-image-to-video",
       "input": {"prompt": "move", "image_url": "https://tempfile.redpandaai.co/a.png"}}, "video/mp4")],
)
async def test_large_result(emu, http, body, ctype):
    emu.faults.large_result_bytes = 3_000_000
    task_id = await create(http, body=body)
    emu.faults.large_result_bytes = 0
    small = await create(http)
    await emu.wait_final(task_id)
    await emu.wait_final(small)
    response = await http.get(emu.tasks[task_id].result_urls[0])
    assert response.headers["content-type"] == ctype
    assert int(response.headers["content-length"]) == len(response.content) >= 2_999_000
    if ctype == "image/png":
        Image.open(io.BytesIO(response.content)).load()
    else:
        assert response.content[4:8] == b"ftyp"
    assert len((await http.get(emu.tasks[small].result_urls[0])).content) < 100_000


async def test_foreign_result_host(emu, http):
    port = emu.base_url.rsplit(":", 1)[1]
    emu.faults.foreign_result_base = f"http://localhost:{port}"
    task_id = await create(http)
    await emu.wait_final(task_id)
    data = (await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})).json()["data"]
    (url,) = json.loads(data["resultJson"])["resultUrls"]
    assert url.startswith(f"http://localhost:{port}/files/r/{task_id}/")
    assert (await http.get(url)).status_code == 200  # reachable, but not on an allow-listed host
    assert (await http.post("/api/v1/common/download-url", json={"url": url})).json()["code"] == 200


async def test_control_routes_drive_faults_from_another_process(emu, http, receiver):
    async with httpx.AsyncClient(base_url=emu.base_url) as control:
        changed = await control.post("/_emulator/faults", json={"fail_next": 1, "fail_models": ["x/y"],
                                                                "callback_delay": 0.01})
        assert changed.status_code == 200 and changed.json()["fail_next"] == 1
        assert emu.faults.fail_next == 1 and emu.faults.fail_models == {"x/y"}
        for bad in ({"nope": 1}, {"fail_next": "many"}, {"expire_results": 1}, {"fail_next": -1},
                    {"callback_copies": 2.5}, {"foreign_result_base": 5}, {"fail_models": "x/y"}, [1]):
            answer = await control.post("/_emulator/faults", json=bad)
            assert answer.status_code == 400 and "error" in answer.json()
        assert emu.faults.fail_next == 1  # a rejected update changes nothing
        task_id = await create(http, receiver)
        await settle(emu, task_id)
        tasks = (await control.get("/_emulator/tasks")).json()
        assert tasks[0]["taskId"] == task_id and tasks[0]["state"] == "fail"
        assert tasks[0]["callBackUrl"] == receiver.url
        requests = (await control.get("/_emulator/requests")).json()
        assert requests[0]["path"] == "/api/v1/jobs/createTask" and requests[0]["status"] == 200
        assert (await control.get("/_emulator/callbacks")).json()[0]["status"] == 200
        assert (await control.post("/_emulator/credits", json={"credits": 12.5})).json() == {"credits": 12.5}
        assert (await control.post("/_emulator/credits", json={"credits": "lots"})).status_code == 400
        reset = (await control.post("/_emulator/faults/reset")).json()
        assert reset["fail_models"] == [] and reset["callback_delay"] == 0.0
    assert (await http.get("/api/v1/chat/credit")).json()["data"] == 12.5
    assert not any(r.path.startswith("/_emulator") for r in emu.requests)


async def test_stop_cancels_pending_work(receiver):
    emulator = KieEmulator(KEY, delays=StateDelays(30, None, None))
    await emulator.start()
    async with httpx.AsyncClient(base_url=emulator.market_url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        await create(c, receiver)
    started = time.monotonic()
    await emulator.stop()
    assert time.monotonic() - started < 2 and receiver.calls == []


async def test_input_image_must_exist_when_it_points_at_the_emulator(emu, http):
    async with httpx.AsyncClient(base_url=emu.upload_url, headers={"Authorization": f"Bearer {KEY}"}) as up:
        uploaded = (await up.post("/api/file-base64-upload", json={
            "base64Data": "aGVsbG8=", "uploadPath": "in", "fileName": "a.png"})).json()["data"]["downloadUrl"]
    body = {"model": "kling-2.6/image-to-video", "input": {"prompt": "move", "duration": "5", "sound": False}}
    good = await create(http, body={**body, "input": {**body["input"], "image_urls": [uploaded]}})
    ghost = uploaded.replace("a.png", "never-uploaded.png")
    bad = await create(http, body={**body, "input": {**body["input"], "image_urls": [ghost]}})
    elsewhere = await create(http, body={**body, "input": {**body["input"], "image_urls": ["https://example.com/x.png"]}})
    for task_id in (good, bad, elsewhere):
        await emu.wait_final(task_id)
    assert emu.tasks[good].state == "success" and emu.tasks[elsewhere].state == "success"
    assert (emu.tasks[bad].state, emu.tasks[bad].fail_code) == ("fail", "422")
