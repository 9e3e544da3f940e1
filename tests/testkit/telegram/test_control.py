"""The HTTP control API under /_fake/ and `python -m testkit.telegram`."""

from __future__ import annotations

import asyncio
import base64
import sys

import aiohttp
import pytest
from aiogram import Bot

from testkit.telegram import FakeTelegram

from tests.conftest import free_port
from .scenario import png_bytes


async def test_drive_a_user_over_http(fake: FakeTelegram, bot: Bot) -> None:
    async with aiohttp.ClientSession(base_url=fake.base_url) as http:
        async with http.post("/_fake/users/21", json={"first_name": "Cy", "language_code": "ru"}) as r:
            assert (await r.json()) == {"id": 21}
        async with http.post("/_fake/users/21/command", json={"command": "/start", "args": "x"}) as r:
            assert (await r.json())["result"]["text"] == "/start x"
        async with http.post("/_fake/users/21/photo", json={"data_b64": base64.b64encode(png_bytes()).decode()}) as r:
            assert (await r.json())["result"]["media"][0]["data"] == {"size": len(png_bytes())}
        async with http.post("/_fake/users/99/text", json={"text": "x"}) as r:
            assert r.status == 404
        async with http.post("/_fake/users/21/tap", json={"text": "nothing"}) as r:
            assert r.status == 400 and "no inline button" in (await r.json())["description"]
        async with http.post("/_fake/users/21/text", json={}) as r:
            assert r.status == 400
        await bot.send_message(21, "hello Cy")
        async with http.get("/_fake/users/21/transcript", params={"format": "text"}) as r:
            text = await r.text()
        assert text.startswith("Cy: /start x\n") and text.endswith("Fake Bot: hello Cy")
        async with http.post("/_fake/faults", json={"flood_next": 1, "retry_after": 4}) as r:
            assert r.status == 200
        async with http.post(f"/bot{bot.token}/sendMessage", json={"chat_id": 21, "text": "x"}) as r:
            assert r.status == 429
        async with http.get("/_fake/flood") as r:
            assert [e["retry_after"] for e in (await r.json())["result"]] == [4]
        async with http.get("/_fake/calls") as r:
            calls = (await r.json())["result"]
        assert [c["method"] for c in calls] == ["sendMessage", "sendMessage"] and calls[-1]["status"] == 429
        async with http.post("/_fake/users/21/block", json={}) as r:
            assert r.status == 200
    assert fake.chats[21].blocked
    updates = await bot.get_updates(timeout=0)
    assert [u.event_type for u in updates] == ["message", "message", "my_chat_member"]


async def test_module_runs_a_server() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "testkit.telegram", "--port", str(port), "--token", "777:CLI",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert f"http://127.0.0.1:{port}" in line and "777:CLI" not in line
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/bot777:CLI/getMe") as r:
                assert (await r.json())["result"]["id"] == 777
    finally:
        proc.terminate()
        await proc.wait()


def test_bad_token_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="token must look like"):
        FakeTelegram(token="not-a-token")


def test_bad_knob_values_are_refused_with_a_clear_error() -> None:
    fake = FakeTelegram(token="1:T")
    with pytest.raises(ValueError, match="count must be a non-negative integer"):
        fake.faults.flood_next(-1)
    with pytest.raises(ValueError, match="status must be 5xx"):
        fake.faults.server_error_next(1, status=404)
    with pytest.raises(ValueError, match="delay must be"):
        fake.faults.delay(-1)
    with pytest.raises(ValueError, match="user_id must be a positive integer"):
        fake.user("ann")  # type: ignore[arg-type]


async def test_control_api_refuses_bad_bodies(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession(base_url=fake.base_url) as http:
        async with http.post("/_fake/faults", json={"flood_next": -2}) as r:
            assert r.status == 400 and "non-negative" in (await r.json())["description"]
        async with http.post("/_fake/users/abc", json={}) as r:
            assert r.status == 400
        async with http.post("/_fake/users/0", json={}) as r:
            assert r.status == 400
        async with http.post("/_fake/users/5", data=b"not json", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
