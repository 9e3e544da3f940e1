"""KIE chat completions client: request shape, answer parsing, typed errors, retries counted
without sleeping, and the key kept out of errors."""

from __future__ import annotations

import httpx
import pytest

from kie_client import (
    ChatClient,
    KieAuthError,
    KieConnectionError,
    KieResponseError,
    KieServerError,
    KieTimeoutError,
    KieValidationError,
    RetryPolicy,
)
from tests.unit.kie.fixtures import API_KEY, FakeSleep, Script, make_client, ok

MESSAGES = [{"role": "system", "content": "rewrite"}, {"role": "user", "content": "кот"}]
ANSWER = {"id": "c1", "object": "chat.completion",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "  a cat  "},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 12, "completion_tokens": 3}}
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0, jitter=0.0)


def chat_with(script, retry=POLICY):
    sleep = FakeSleep()
    kie = make_client(script, sleep=sleep)
    return ChatClient(kie, retry=retry), sleep


async def test_posts_messages_to_the_model_path_and_reads_the_answer():
    script = Script(ok(ANSWER))
    chat, sleep = chat_with(script)
    async with chat.kie:
        result = await chat.complete("gemini-3-flash", MESSAGES, max_tokens=300)
    req = script.requests[0]
    assert req.method == "POST"
    assert req.url.path == "/gemini-3-flash/v1/chat/completions"
    assert req.headers["Authorization"] == f"Bearer {API_KEY}"
    assert script.json_body() == {"messages": MESSAGES, "stream": False, "max_tokens": 300}
    assert (result.text, result.finish_reason, result.prompt_tokens, result.completion_tokens) == (
        "a cat", "stop", 12, 3)
    assert sleep.delays == []


async def test_content_parts_are_joined():
    body = {"choices": [{"message": {"content": [{"type": "text", "text": "a "},
                                                 {"type": "text", "text": "dog"}]}}]}
    chat, _ = chat_with(Script(ok(body)))
    async with chat.kie:
        assert (await chat.complete("gemini-3-flash", MESSAGES)).text == "a dog"


@pytest.mark.parametrize("failure", [
    ok({"code": 500, "msg": "Internal server error"}),
    ok({"error": {"message": "overloaded"}}, 503),
    ok({"code": 429, "msg": "Rate limit exceeded"}),
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
])
async def test_transient_failures_are_retried_with_backoff_from_the_policy(failure):
    script = Script(failure, failure, ok(ANSWER))
    chat, sleep = chat_with(script)
    async with chat.kie:
        assert (await chat.complete("gemini-3-flash", MESSAGES)).text == "a cat"
    assert len(script.requests) == 3
    assert sleep.delays == [0.5, 1.0]


@pytest.mark.parametrize("failure, error", [
    (ok({"code": 500, "msg": "boom"}), KieServerError),
    (httpx.ReadTimeout("slow"), KieTimeoutError),
    (httpx.ConnectError("refused"), KieConnectionError),
])
async def test_gives_up_after_max_attempts(failure, error):
    script = Script(failure)
    chat, sleep = chat_with(script)
    async with chat.kie:
        with pytest.raises(error):
            await chat.complete("gemini-3-flash", MESSAGES)
    assert len(script.requests) == 3
    assert sleep.delays == [0.5, 1.0]


@pytest.mark.parametrize("failure, error", [
    (ok({"code": 401, "msg": "You do not have access permissions"}), KieAuthError),
    (ok({"error": {"message": "bad key"}}, 401), KieAuthError),
    (ok({"code": 422, "msg": "messages is required"}), KieValidationError),
    (ok({"choices": []}), KieResponseError),
    (ok({"choices": [{"message": {"content": "   "}}]}), KieResponseError),
    (httpx.Response(200, content=b"<html>"), KieResponseError),
])
async def test_definite_answers_are_not_retried(failure, error):
    script = Script(failure)
    chat, sleep = chat_with(script)
    async with chat.kie:
        with pytest.raises(error):
            await chat.complete("gemini-3-flash", MESSAGES)
    assert len(script.requests) == 1
    assert sleep.delays == []


async def test_a_long_retry_after_is_not_waited_for():
    script = Script(ok({"code": 429, "msg": "slow down"}, headers={"Retry-After": "60"}))
    chat, sleep = chat_with(script, retry=RetryPolicy(max_attempts=3, max_retry_after=5.0))
    async with chat.kie:
        with pytest.raises(Exception):
            await chat.complete("gemini-3-flash", MESSAGES)
    assert len(script.requests) == 1 and sleep.delays == []


async def test_the_key_never_appears_in_errors_or_reprs():
    script = Script(ok({"code": 401, "msg": f"bad key {API_KEY}"}))
    chat, _ = chat_with(script)
    async with chat.kie:
        with pytest.raises(KieAuthError) as info:
            await chat.complete("gemini-3-flash", MESSAGES)
    err = info.value
    assert API_KEY not in str(err) and API_KEY not in repr(err) and API_KEY not in repr(chat)
    assert API_KEY not in err.response.request.headers["Authorization"]


@pytest.mark.parametrize("model, messages", [
    ("", MESSAGES), ("a/b", MESSAGES), ("gemini-3-flash", []),
    ("gemini-3-flash", [{"role": "tool", "content": "x"}]),
    ("gemini-3-flash", [{"role": "user", "content": "  "}]),
])
async def test_bad_arguments_are_refused_before_any_request(model, messages):
    script = Script(ok(ANSWER))
    chat, _ = chat_with(script)
    async with chat.kie:
        with pytest.raises(ValueError):
            await chat.complete(model, messages)
    assert script.requests == []


async def test_on_response_hook_sees_each_attempt():
    seen = []
    script = Script(ok({"code": 500, "msg": "x"}), ok(ANSWER))
    kie = make_client(script, on_response=lambda *a: seen.append(a[:3]))
    chat = ChatClient(kie, retry=POLICY)
    async with kie:
        await chat.complete("gemini-3-flash", MESSAGES)
    assert seen == [("completions", 200, 500), ("completions", 200, 200)]
