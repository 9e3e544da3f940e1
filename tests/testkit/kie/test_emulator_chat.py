"""The emulator's chat completions route over real loopback HTTP: deterministic answers, KIE-like
validation, fault knobs — and the product's ChatClient against it."""

from __future__ import annotations

import httpx
import pytest

from kie_client import (
    ChatClient,
    KieAuthError,
    KieClient,
    KieNotFoundError,
    KieServerError,
    KieTimeoutError,
    KieValidationError,
    NoLimit,
    RetryPolicy,
)
from testkit.kie import KieEmulator
from testkit.kie.routes_chat import IMAGE_WORDS, VIDEO_WORDS, rewrite

KEY = "emu-chat-key"
PATH = "/gemini-3-flash/v1/chat/completions"


@pytest.fixture
async def emu():
    emulator = KieEmulator(KEY)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def http(emu):
    async with httpx.AsyncClient(base_url=emu.market_url,
                                 headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def body(user="кот в шляпе", system="Rewrite prompts for an image generator."):
    return {"messages": [{"role": "system", "content": system},
                         {"role": "user", "content": user}]}


async def test_answers_a_deterministic_rewrite_in_openai_shape(emu, http):
    answer = (await http.post(PATH, json=body())).json()
    text = answer["choices"][0]["message"]["content"]
    assert text == f"kot v shlyape, {IMAGE_WORDS}" == rewrite("кот в шляпе")
    assert answer["object"] == "chat.completion" and answer["model"] == "gemini-3-flash"
    again = (await http.post(PATH, json=body())).json()
    assert again["choices"][0]["message"]["content"] == text
    video = (await http.post(PATH, json=body("Море", "for a video model"))).json()
    assert video["choices"][0]["message"]["content"] == f"More, {VIDEO_WORDS}"
    assert [r.path for r in emu.requests] == [PATH] * 3
    assert emu.requests[0].json["messages"][1]["content"] == "кот в шляпе"


@pytest.mark.parametrize("payload, reason", [
    ({}, "messages is required"),
    ({"messages": []}, "messages must be a non-empty array"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "system", "content": "only system"}]}, "user message"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": True}, "stream"),
    ([1, 2], "JSON object"),
])
async def test_bad_bodies_get_422_with_the_reason(http, payload, reason):
    answer = (await http.post(PATH, json=payload)).json()
    assert answer["code"] == 422 and reason in answer["msg"]


async def test_auth_and_unknown_model(emu, http):
    async with httpx.AsyncClient(base_url=emu.market_url,
                                 headers={"Authorization": "Bearer wrong"}) as other:
        assert (await other.post(PATH, json=body())).json()["code"] == 401
    answer = (await http.post("/no-such-model/v1/chat/completions", json=body())).json()
    assert answer["code"] == 404


async def test_fault_knobs(emu, http):
    emu.faults.update({"chat_errors": 1, "chat_error_code": 429})
    assert (await http.post(PATH, json=body())).json()["code"] == 429
    assert "choices" in (await http.post(PATH, json=body())).json()


def client(emu, key=KEY, **kw):
    kie = KieClient(key, market_base_url=emu.market_url, upload_base_url=emu.upload_url,
                    create_limiter=NoLimit(), status_limiter=NoLimit())
    return ChatClient(kie, **kw)


async def test_the_product_client_against_the_emulator(emu):
    chat = client(emu, retry=RetryPolicy(max_attempts=2, base_delay=0.0, jitter=0.0))
    async with chat.kie:
        result = await chat.complete("gemini-3-flash", body()["messages"])
        assert result.text == rewrite("кот в шляпе")
        emu.faults.update({"chat_errors": 1, "chat_error_code": 500})
        assert (await chat.complete("gemini-3-flash", body()["messages"])).text == result.text
        emu.faults.update({"chat_errors": 2, "chat_error_code": 500})
        with pytest.raises(KieServerError):
            await chat.complete("gemini-3-flash", body()["messages"])
        with pytest.raises(KieNotFoundError):
            await chat.complete("no-such-model", body()["messages"])
        with pytest.raises(KieValidationError):
            await chat.complete("gemini-3-flash", [{"role": "system", "content": "x"}])
    bad = client(emu, key="wrong")
    async with bad.kie:
        with pytest.raises(KieAuthError):
            await bad.complete("gemini-3-flash", body()["messages"])


async def test_a_hanging_chat_times_out(emu):
    emu.faults.update({"hang_chats": 1, "hang_seconds": 5.0})
    chat = client(emu, timeout=0.2, retry=RetryPolicy.none())
    async with chat.kie:
        with pytest.raises(KieTimeoutError):
            await chat.complete("gemini-3-flash", body()["messages"])
