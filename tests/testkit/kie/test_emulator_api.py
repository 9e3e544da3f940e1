"""KieEmulator over real loopback HTTP: lifecycle, auth, validation, limits, files, uploads."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest
from aiohttp import web

from testkit.kie import KieEmulator, StateDelays

FAST = StateDelays(0.03, 0.03, 0.03)
KEY = "emu-key-123"
SEEDREAM = {"model": "seedream/4.5-text-to-image",
            "input": {"prompt": "a lighthouse", "aspect_ratio": "16:9", "quality": "basic"}}
KLING = {"model": "kling-2.6/text-to-video",
         "input": {"prompt": "waves", "aspect_ratio": "9:16", "duration": "10", "sound": True}}


@pytest.fixture
async def emu():
    emulator = KieEmulator(KEY, delays=FAST)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def http(emu):
    async with httpx.AsyncClient(base_url=emu.market_url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


async def create(http, body=SEEDREAM) -> str:
    answer = (await http.post("/api/v1/jobs/createTask", json=body)).json()
    assert answer["code"] == 200, answer
    return answer["data"]["taskId"]


async def record(http, task_id):
    return (await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})).json()


async def test_full_image_lifecycle(emu, http):
    response = await http.post("/api/v1/jobs/createTask", json=SEEDREAM)
    assert response.status_code == 200
    body = response.json()
    task_id = body["data"]["taskId"]
    assert body["code"] == 200 and body["msg"] == "success"
    assert re.fullmatch(r"[0-9a-f]{32}", task_id) and body["data"]["recordId"] == task_id
    running = (await record(http, task_id))["data"]
    # Any running state: on a busy machine the 30 ms delays may pass before this first read.
    assert running["state"] in ("waiting", "queuing", "generating") and running["resultJson"] == ""
    assert running["failCode"] is None and running["failMsg"] is None
    assert running["costTime"] is None and running["completeTime"] is None
    assert "creditsConsumed" not in running and "updateTime" not in running
    param = json.loads(running["param"])
    assert param["model"] == SEEDREAM["model"] and "callBackUrl" not in param
    assert json.loads(param["input"]) == SEEDREAM["input"]  # input is double-encoded, as live
    seen = {running["state"]}
    while running["state"] not in ("success", "fail"):
        await asyncio.sleep(0.1)  # stays within 10 recordInfo/s
        running = (await record(http, task_id))["data"]
        seen.add(running["state"])
    assert running["state"] == "success"
    assert "success" in seen and len(seen) >= 2  # seen running, then finished
    assert running["createTime"] <= running["completeTime"]
    assert isinstance(running["costTime"], int) and running["creditsConsumed"] == 6.5
    urls = json.loads(running["resultJson"])["resultUrls"]
    assert len(urls) == 1 and urls[0].startswith(emu.files_url)
    image = await http.get(urls[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert struct.unpack(">II", image.content[16:24]) == (114, 64)
    assert (await http.get("/api/v1/chat/credit")).json() == {"code": 200, "msg": "success", "data": 993.5}
    assert emu.credits == Decimal("993.5")


async def test_states_pass_through_queuing_and_generating(emu, http):
    task_id = await create(http)
    await emu.wait_final(task_id)
    states = [data["state"] for _, data in emu.tasks[task_id].snapshots]
    assert states == ["waiting", "queuing", "generating", "success"]


async def test_skipped_states_and_optional_fields(http):
    emulator = KieEmulator(KEY, delays=StateDelays(0.01, None, None), include_update_time=True,
                           include_credits_consumed=False)
    async with emulator:
        async with httpx.AsyncClient(base_url=emulator.market_url, headers={"Authorization": f"Bearer {KEY}"}) as c:
            task_id = await create(c)
            assert "updateTime" in (await record(c, task_id))["data"]
            await emulator.wait_final(task_id)
            data = (await record(c, task_id))["data"]
    assert [d["state"] for _, d in emulator.tasks[task_id].snapshots] == ["waiting", "success"]
    assert "creditsConsumed" not in data and data["updateTime"] >= data["createTime"]


async def test_video_result_is_an_mp4(emu, http):
    task_id = await create(http, KLING)
    task = await emu.wait_final(task_id)
    assert task.cost == 220  # 55 × 2 (10 s) × 2 (sound)
    data = (await record(http, task_id))["data"]
    assert data["creditsConsumed"] == 220
    video = await http.get(json.loads(data["resultJson"])["resultUrls"][0])
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:12] == b"ftypisom"
    assert b"moov" in video.content[:200] and b"mdat" in video.content


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/v1/jobs/createTask", {"json": SEEDREAM}),
        ("GET", "/api/v1/jobs/recordInfo", {"params": {"taskId": "x"}}),
        ("POST", "/api/v1/common/download-url", {"json": {"url": "http://x"}}),
        ("GET", "/api/v1/chat/credit", {}),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {KEY}", KEY])
async def test_bearer_check(emu, method, path, kwargs, auth):
    headers = {"Authorization": auth} if auth else {}
    async with httpx.AsyncClient(base_url=emu.market_url, headers=headers) as client:
        response = await client.request(method, path, **kwargs)
    assert response.status_code == 200
    assert response.json() == {"code": 401, "msg": "You do not have access permissions"}
    assert not emu.tasks


@pytest.mark.parametrize(
    ("body", "code", "msg"),
    [
        ({"model": "flux-2/pro-text-to-image", "input": {"prompt": "a cat", "resolution": "1K"}},
         500, "aspect_ratio is required"),
        ({"model": "kling-2.6/text-to-video", "input": {"prompt": "p", "aspect_ratio": "1:1", "duration": 5,
                                                        "sound": False}}, 422, "duration must be one of 5, 10"),
        ({"model": "midjourney/v7", "input": {"prompt": "p"}}, 422, "not supported"),
        ({"input": {"prompt": "p"}}, 422, "model is required"),
        ({"model": "seedream/4.5-text-to-image"}, 500, "input is required"),
        ({**SEEDREAM, "callBackUrl": "ftp://x"}, 422, "callBackUrl"),
        (["not", "an", "object"], 400, "JSON object"),
    ],
)
async def test_create_validation(emu, http, body, code, msg):
    answer = (await http.post("/api/v1/jobs/createTask", json=body)).json()
    assert answer["code"] == code and msg in answer["msg"]
    assert not emu.tasks and emu.credits == 1000


async def test_non_json_body(emu, http):
    answer = (await http.post("/api/v1/jobs/createTask", content=b"{nope",
                              headers={"Content-Type": "application/json"})).json()
    assert answer["code"] == 400 and not emu.tasks


async def test_missing_field_code_422_and_mirrored_status():
    emulator = KieEmulator(KEY, delays=FAST, missing_field_code=422, mirror_http_status=True)
    async with emulator, httpx.AsyncClient(base_url=emulator.market_url) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        bad = await client.post("/api/v1/jobs/createTask",
                                json={"model": "flux-2/pro-text-to-image", "input": {"prompt": "a cat"}})
        assert bad.status_code == 422 and bad.json()["msg"] == "aspect_ratio is required"
        ok = await client.post("/api/v1/jobs/createTask", json=SEEDREAM)
        assert ok.status_code == 200
        unknown = await client.get("/api/v1/jobs/recordInfo", params={"taskId": "0" * 32})
        assert unknown.status_code == 422
        anonymous = await client.get("/api/v1/chat/credit", headers={"Authorization": ""})
        assert anonymous.status_code == 401


async def test_record_info_errors(http):
    assert (await record(http, "f" * 32)) == {"code": 422, "msg": "recordInfo is null", "data": None}
    missing = (await http.get("/api/v1/jobs/recordInfo")).json()
    assert missing["code"] == 400 and missing["msg"] == "taskId parameter is required"


async def test_create_rate_limit_20_per_10s(emu, http):
    for _ in range(20):
        await create(http)
    limited = (await http.post("/api/v1/jobs/createTask", json=SEEDREAM)).json()
    assert limited == {"code": 429, "msg": "Rate limit exceeded"}
    assert len(emu.tasks) == 20


async def test_create_rate_limit_window_slides():
    now = [100.0]
    emulator = KieEmulator(KEY, delays=FAST, create_limit=(2, 10.0), clock=lambda: now[0])
    async with emulator, httpx.AsyncClient(base_url=emulator.market_url,
                                           headers={"Authorization": f"Bearer {KEY}"}) as client:
        await create(client)
        now[0] += 5
        await create(client)
        assert (await client.post("/api/v1/jobs/createTask", json=SEEDREAM)).json()["code"] == 429
        now[0] += 5.01  # the first create left the window
        await create(client)


async def test_record_info_rate_limit(emu, http):
    task_id = await create(http)
    codes = [(await record(http, task_id))["code"] for _ in range(11)]
    assert codes[:10] == [200] * 10 and codes[10] == 429


async def test_insufficient_credits(http):
    emulator = KieEmulator(KEY, delays=FAST, credits=60)
    async with emulator, httpx.AsyncClient(base_url=emulator.market_url,
                                           headers={"Authorization": f"Bearer {KEY}"}) as client:
        answer = (await client.post("/api/v1/jobs/createTask", json=KLING)).json()
        assert answer["code"] == 402 and answer["msg"].startswith("Credits insufficient : ")
        assert not emulator.tasks
        await create(client, SEEDREAM)
        assert (await client.get("/api/v1/chat/credit")).json()["data"] == 53.5


async def test_price_table_is_configurable():
    emulator = KieEmulator(KEY, delays=FAST, prices={"seedream/4.5-text-to-image": 3})
    async with emulator, httpx.AsyncClient(base_url=emulator.market_url,
                                           headers={"Authorization": f"Bearer {KEY}"}) as client:
        await create(client)
        assert (await client.get("/api/v1/chat/credit")).json()["data"] == 997


async def test_download_url(emu, http):
    task_id = await create(http)
    await emu.wait_final(task_id)
    url = json.loads((await record(http, task_id))["data"]["resultJson"])["resultUrls"][0]
    answer = (await http.post("/api/v1/common/download-url", json={"url": url})).json()
    assert answer["code"] == 200 and isinstance(answer["data"], str) and answer["data"] != url
    fresh = await http.get(answer["data"])
    assert fresh.status_code == 200 and fresh.content == (await http.get(url)).content
    for bad in ("https://example.com/a.png", f"{emu.files_url}/r/{'0' * 32}/0.png", url.replace("0.png", "1.png")):
        assert (await http.post("/api/v1/common/download-url", json={"url": bad})).json()["code"] == 422
    assert (await http.post("/api/v1/common/download-url", json={})).json()["code"] == 422


async def test_download_link_ttl():
    now = [0.0]
    emulator = KieEmulator(KEY, delays=StateDelays(0.01, None, None), download_ttl=60, clock=lambda: now[0])
    async with emulator, httpx.AsyncClient(base_url=emulator.market_url,
                                           headers={"Authorization": f"Bearer {KEY}"}) as client:
        task_id = await create(client)
        await emulator.wait_final(task_id)
        link = (await client.post("/api/v1/common/download-url",
                                  json={"url": emulator.tasks[task_id].result_urls[0]})).json()["data"]
        assert (await client.get(link)).status_code == 200
        now[0] += 61
        assert (await client.get(link)).status_code == 403


async def test_result_not_served_before_success(emu, http):
    task_id = await create(http)
    assert (await http.get(f"{emu.files_url}/r/{task_id}/0.png")).status_code == 404


async def test_upload_stream_base64_and_url(emu):
    png = bytes.fromhex("89504e470d0a1a0a") + b"rest-of-file"
    async with httpx.AsyncClient(base_url=emu.upload_url, headers={"Authorization": f"Bearer {KEY}"}) as up:
        streamed = (await up.post("/api/file-stream-upload", files={"file": ("cat.png", png, "image/png")},
                                  data={"uploadPath": "images/user-uploads", "fileName": "cat.png"})).json()
        assert streamed["success"] is True and streamed["code"] == 200
        assert streamed["msg"] == "File uploaded successfully"
        data = streamed["data"]
        assert set(data) == {"success", "fileName", "filePath", "downloadUrl", "fileSize", "mimeType", "uploadedAt"}
        assert data["fileName"] == "cat.png" and data["fileSize"] == len(png) and data["mimeType"] == "image/png"
        assert data["filePath"].endswith("/images/user-uploads/cat.png")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["uploadedAt"])
        got = await up.get(data["downloadUrl"])
        assert got.content == png and got.headers["content-type"] == "image/png"

        b64 = (await up.post("/api/file-base64-upload", json={
            "base64Data": "data:image/webp;base64," + base64.b64encode(b"webp!").decode(),
            "uploadPath": "/in/", "fileName": "x.webp"})).json()["data"]
        assert b64["mimeType"] == "image/webp" and (await up.get(b64["downloadUrl"])).content == b"webp!"
        raw = (await up.post("/api/file-base64-upload", json={
            "base64Data": base64.b64encode(png).decode(), "uploadPath": "in"})).json()["data"]
        assert re.fullmatch(r"[0-9a-f]{16}\.bin", raw["fileName"])

        by_url = (await up.post("/api/file-url-upload", json={
            "fileUrl": data["downloadUrl"], "uploadPath": "copies"})).json()
        assert by_url["code"] == 200 and by_url["data"]["fileName"] == "cat.png"
        assert (await up.get(by_url["data"]["downloadUrl"])).content == png


@pytest.mark.parametrize(
    ("path", "kwargs", "msg"),
    [
        ("/api/file-base64-upload", {"json": {"base64Data": "aGk="}}, "Missing required parameter: uploadPath"),
        ("/api/file-base64-upload", {"json": {"base64Data": "not base64!!", "uploadPath": "x"}},
         "Base64 decoding failed: Invalid Base64 format"),
        ("/api/file-url-upload", {"json": {"fileUrl": "http://x/a.png"}}, "Missing required parameter: uploadPath"),
        ("/api/file-url-upload", {"json": {"fileUrl": "https://example.com/a.png", "uploadPath": "x"}},
         "only loopback"),
        ("/api/file-stream-upload", {"files": {"file": ("a.png", b"x")}}, "Missing required parameter: uploadPath"),
        ("/api/file-stream-upload", {"data": {"uploadPath": "x"}, "files": {"other": ("a", b"x")}},
         "Missing required parameter: file"),
        ("/api/file-base64-upload", {"json": {"base64Data": "aGk=", "uploadPath": "../etc"}}, "Invalid uploadPath"),
    ],
)
async def test_upload_errors(emu, path, kwargs, msg):
    async with httpx.AsyncClient(base_url=emu.upload_url, headers={"Authorization": f"Bearer {KEY}"}) as up:
        answer = (await up.post(path, **kwargs)).json()
    assert answer == {"success": False, "code": 400, "msg": msg} or (answer["code"] == 400 and msg in answer["msg"])
    assert not emu.uploads


async def test_upload_auth(emu):
    async with httpx.AsyncClient(base_url=emu.upload_url) as up:
        answer = (await up.post("/api/file-base64-upload", json={"base64Data": "aGk=", "uploadPath": "x"})).json()
    assert answer == {"success": False, "code": 401, "msg": "Authentication failed: Invalid API Key"}


async def test_url_upload_from_another_loopback_server(emu, unused_port):
    async def handler(request):
        return web.Response(body=b"JPEGDATA", content_type="image/jpeg")
    async def bounce(request):
        raise web.HTTPFound("https://example.com/dog.jpg")
    app = web.Application()
    app.router.add_get("/pics/dog.jpg", handler)
    app.router.add_get("/bounce.jpg", bounce)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()
    try:
        async with httpx.AsyncClient(base_url=emu.upload_url, headers={"Authorization": f"Bearer {KEY}"}) as up:
            ok = (await up.post("/api/file-url-upload", json={
                "fileUrl": f"http://127.0.0.1:{unused_port}/pics/dog.jpg", "uploadPath": "x"})).json()
            missing = (await up.post("/api/file-url-upload", json={
                "fileUrl": f"http://127.0.0.1:{unused_port}/nope.jpg", "uploadPath": "x"})).json()
            bounced = (await up.post("/api/file-url-upload", json={
                "fileUrl": f"http://127.0.0.1:{unused_port}/bounce.jpg", "uploadPath": "x"})).json()
    finally:
        await runner.cleanup()
    assert bounced["code"] == 400 and "HTTP 302" in bounced["msg"]
    assert ok["data"]["mimeType"] == "image/jpeg" and ok["data"]["fileName"] == "dog.jpg"
    assert missing["code"] == 400 and "HTTP 404" in missing["msg"]


async def test_requests_are_recorded_without_the_key(emu, http):
    await create(http)
    await record(http, "nope")
    first, second = emu.requests
    assert (first.method, first.path, first.json, first.status) == ("POST", "/api/v1/jobs/createTask", SEEDREAM, 200)
    assert (second.path, second.query, second.status) == ("/api/v1/jobs/recordInfo", {"taskId": "nope"}, 422)
    assert KEY not in repr(emu.requests) and KEY not in repr(emu)


def test_command_line_walkthrough():
    result = subprocess.run(
        [sys.executable, "-m", "testkit.kie", "--walkthrough", "--delay", "0.05"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "state=success" in result.stdout and "PNG 114x64" in result.stdout


def test_command_line_serves_until_terminated(unused_port):
    proc = subprocess.Popen(
        [sys.executable, "-m", "testkit.kie", "--port", str(unused_port), "--api-key", "k2"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{unused_port}" in line
        answer = httpx.get(f"http://127.0.0.1:{unused_port}/api/v1/chat/credit",
                           headers={"Authorization": "Bearer k2"}).json()
        assert answer == {"code": 200, "msg": "success", "data": 1000}
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
