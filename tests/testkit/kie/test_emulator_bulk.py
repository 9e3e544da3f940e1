"""The emulator's bulk knobs for the benchmark (testkit/kie/bulk.py), over real loopback HTTP:
held tasks, finish-all with callbacks, callback bodies, and per-route stats."""

from __future__ import annotations

import json

import httpx
import pytest
from aiohttp import web

from kie_client.callbacks import parse_callback
from testkit.kie import KieEmulator
from testkit.rates import max_in_window, summary
from tests.conftest import wait_until

KEY = "emu-key-bulk"
SEEDREAM = {"model": "seedream/4.5-text-to-image",
            "input": {"prompt": "a lighthouse", "aspect_ratio": "1:1", "quality": "basic"}}


@pytest.fixture
async def emu():
    emulator = KieEmulator(KEY, create_limit=(2, 10.0), callback_backoff=0.01)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def http(emu):
    async with httpx.AsyncClient(base_url=emu.market_url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


@pytest.fixture
async def receiver(unused_port):
    bodies: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        bodies.append({"gid": request.match_info["gid"], "body": await request.read()})
        return web.json_response({"code": 200})

    app = web.Application()
    app.router.add_post("/kie/callback/{gid}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()
    yield f"http://127.0.0.1:{unused_port}", bodies
    await runner.cleanup()


async def test_held_tasks_wait_for_finish_all_then_call_back(emu, http, receiver):
    base, received = receiver
    credits = emu.credits
    urls = [f"{base}/kie/callback/{gid}?token=t" for gid in (7, 8, 9)]
    answer = (await http.post("/_emulator/bulk/tasks", json={**SEEDREAM, "callback_urls": urls})).json()
    ids = answer["task_ids"]
    assert len(ids) == 3 and emu.credits == credits  # held tasks are free
    states = [(await http.get("/api/v1/jobs/recordInfo", params={"taskId": i})).json()["data"]["state"]
              for i in ids]
    assert states == ["generating"] * 3 and not received

    finished = (await http.post("/_emulator/bulk/finish", json={"task_ids": None})).json()
    assert finished == {"finished": 3}
    await wait_until(lambda: len(received) == 3)
    by_gid = {r["gid"]: parse_callback(r["body"]) for r in received}
    assert sorted(by_gid) == ["7", "8", "9"]
    assert {p.task_id for p in by_gid.values()} == set(ids)
    assert all(p.state == "success" and p.record.result_urls for p in by_gid.values())
    again = (await http.post("/_emulator/bulk/finish", json={"task_ids": ids})).json()
    assert again == {"finished": 0}  # finishing twice changes nothing


async def test_callback_bodies_are_what_kie_would_post(http):
    ids = (await http.post("/_emulator/bulk/tasks", json={**SEEDREAM, "count": 2})).json()["task_ids"]
    await http.post("/_emulator/bulk/finish", json={"task_ids": ids[:1]})
    bodies = (await http.post("/_emulator/bulk/callback_bodies", json={"task_ids": ids})).json()["bodies"]
    done, running = parse_callback(json.dumps(bodies[ids[0]]).encode()), bodies[ids[1]]
    assert done.task_id == ids[0] and done.state == "success" and done.record.result_urls
    assert running["data"]["state"] == "generating"


@pytest.mark.parametrize("body", [
    {**SEEDREAM, "count": 0},
    {**SEEDREAM},
    {"model": SEEDREAM["model"], "input": {"prompt": "x", "aspect_ratio": "7:3"}, "count": 1},
    {"input": SEEDREAM["input"], "count": 1},
])
async def test_bad_bulk_requests_are_refused(http, body):
    assert (await http.post("/_emulator/bulk/tasks", json=body)).status_code == 400


async def test_unknown_task_ids_are_refused(http):
    assert (await http.post("/_emulator/bulk/finish", json={"task_ids": ["nope"]})).status_code == 400
    assert (await http.post("/_emulator/bulk/callback_bodies", json={"task_ids": ["nope"]})).status_code == 400


async def test_stats_count_each_route_with_its_429s(emu, http):
    before = (await http.get("/_emulator/stats")).json()["now"]
    codes = [(await http.post("/api/v1/jobs/createTask", json=SEEDREAM)).json()["code"] for _ in range(3)]
    assert codes == [200, 200, 429]  # this emulator allows 2 creates per 10 s
    await http.get("/api/v1/jobs/recordInfo", params={"taskId": "unknown"})
    stats = (await http.get("/_emulator/stats", params={"since": before})).json()
    creates = stats["routes"]["/api/v1/jobs/createTask"]
    assert (creates["count"], creates["ok"], creates["rate_limited"]) == (3, 2, 1)
    assert creates["ok_first_at"] <= creates["ok_last_at"] <= creates["last_at"]
    assert stats["routes"]["/api/v1/jobs/recordInfo"]["count"] == 1
    assert stats["tasks"]["total"] == 2
    later = (await http.get("/_emulator/stats", params={"since": stats["now"] + 1})).json()
    assert later["routes"] == {}


def test_max_in_window_is_a_sliding_window():
    assert max_in_window([]) == 0
    # 3 late in one second and 3 early in the next: 6 inside one 1 s window.
    assert max_in_window([0.0, 0.7, 0.8, 0.9, 1.1, 1.2, 1.3]) == 6
    assert max_in_window([0.0, 1.0, 2.0]) == 1  # an event exactly 1 s later is outside
    figures = summary([1.0, 2.0, 3.0], [200, 429, 200])
    assert (figures["ok"], figures["rate_limited"], figures["ok_last_at"]) == (2, 1, 3.0)
