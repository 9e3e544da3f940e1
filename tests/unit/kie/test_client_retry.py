"""Retries as data: counts, delays requested from an injected sleep, Retry-After, createTask."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from kie_client import (
    KieConnectionError,
    KieGenerationFailedError,
    KieRateLimitError,
    KieServerError,
    KieSubmissionUnknownError,
    KieTimeoutError,
    KieValidationError,
    RetryPolicy,
)
from tests.unit.kie.fixtures import FakeSleep, Script, load, make_client, ok

POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, jitter=0.0)
SERVER_500 = {"code": 500, "msg": "Internal server error"}


def client_with(script, **kw):
    sleep = FakeSleep()
    return make_client(script, retry=kw.pop("retry", POLICY), sleep=sleep, **kw), sleep


@pytest.mark.parametrize(
    "failure",
    [
        ok(SERVER_500),
        ok(SERVER_500, 500),
        ok({"code": 429, "msg": "Rate limit exceeded"}),
        ok({"code": 455, "msg": "maintenance"}),
        httpx.Response(503, content=b"busy"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
async def test_reads_retry_transient_failures(failure):
    script = Script(failure, failure, ok(load("record_info_success_live")))
    client, sleep = client_with(script)
    async with client:
        record = await client.get_task("32b1348d0d6bf09b002a88315528e574")
    assert record.is_final
    assert len(script.requests) == 3
    assert sleep.delays == [0.5, 1.0]


async def test_reads_give_up_after_max_attempts_with_capped_backoff():
    script = Script(ok(SERVER_500))
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=4.0, jitter=0.0)
    client, sleep = client_with(script, retry=policy)
    async with client:
        with pytest.raises(KieServerError):
            await client.get_credits()
    assert len(script.requests) == 6
    assert sleep.delays == [1.0, 2.0, 4.0, 4.0, 4.0]


@pytest.mark.parametrize(
    "failure",
    [
        ok({"code": 501, "msg": "generation failed"}),
        ok({"code": 500, "msg": "aspect_ratio is required"}),
        ok({"code": 401, "msg": "no"}, 401),
        ok({"code": 422, "msg": "recordInfo is null"}),
        ok({"code": 402, "msg": "credits"}),
    ],
)
async def test_reads_never_retry_definite_answers(failure):
    script = Script(failure)
    client, sleep = client_with(script)
    async with client:
        with pytest.raises(Exception):
            await client.get_task("t")
    assert len(script.requests) == 1 and sleep.delays == []


async def test_retry_after_seconds_is_honoured():
    script = Script(ok({"code": 429, "msg": "Rate limit exceeded"}, 429, {"Retry-After": "7"}),
                    ok(load("credit_live")))
    client, sleep = client_with(script)
    async with client:
        await client.get_credits()
    assert sleep.delays == [7.0]


async def test_retry_after_http_date_is_honoured():
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    script = Script(ok(SERVER_500, 503, {"Retry-After": format_datetime(when, usegmt=True)}),
                    ok(load("credit_live")))
    client, sleep = client_with(script)
    async with client:
        await client.get_credits()
    assert len(sleep.delays) == 1 and 25.0 <= sleep.delays[0] <= 30.0


async def test_retry_after_too_long_raises_with_value():
    script = Script(ok({"code": 429, "msg": "slow down"}, 429, {"Retry-After": "3600"}))
    client, sleep = client_with(script)
    async with client:
        with pytest.raises(KieRateLimitError) as info:
            await client.get_credits()
    assert info.value.retry_after == 3600.0
    assert len(script.requests) == 1 and sleep.delays == []


async def test_jitter_uses_injected_rng():
    script = Script(ok(SERVER_500), ok(load("credit_live")))
    policy = RetryPolicy(base_delay=2.0, jitter=0.5, rng=lambda: 1.0)
    client, sleep = client_with(script, retry=policy)
    async with client:
        await client.get_credits()
    assert sleep.delays == [1.0]


async def test_uploads_retry_connection_errors():
    script = Script(httpx.ConnectError("refused"), ok(load("upload_stream_live")))
    client, sleep = client_with(script)
    async with client:
        up = await client.upload_stream(b"data", upload_path="images")
    assert up.download_url and len(script.requests) == 2


# ---------------------------------------------------------------- createTask


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")])
async def test_create_retries_when_request_never_left(failure):
    script = Script(failure, ok(load("create_task_live")))
    client, sleep = client_with(script)
    async with client:
        created = await client.create_task("m", {"prompt": "x"})
    assert created.task_id and len(script.requests) == 2 and sleep.delays == [0.5]


async def test_create_connect_failure_exhausted_is_a_plain_connection_error():
    script = Script(httpx.ConnectError("refused"))
    client, _ = client_with(script)
    async with client:
        with pytest.raises(KieConnectionError) as info:
            await client.create_task("m", {"prompt": "x"})
    assert not isinstance(info.value, KieSubmissionUnknownError)
    assert info.value.request_sent is False
    assert len(script.requests) == 4


async def test_create_retries_429_honouring_retry_after():
    script = Script(ok({"code": 429, "msg": "Rate limit exceeded"}, 429, {"Retry-After": "2"}),
                    ok(load("create_task_live")))
    client, sleep = client_with(script)
    async with client:
        await client.create_task("m", {"prompt": "x"})
    assert len(script.requests) == 2 and sleep.delays == [2.0]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
        ok(SERVER_500),
        ok(SERVER_500, 500),
        httpx.Response(502, content=b"<html>bad gateway</html>"),
        httpx.Response(200, content=b'{"code":200,"msg":"success","data":{"taskId":"ab'),
        ok({"code": 200, "msg": "success", "data": {}}),
    ],
)
async def test_create_unknown_outcome_after_exactly_one_request(failure):
    script = Script(failure, ok(load("create_task_live")))
    client, sleep = client_with(script)
    async with client:
        with pytest.raises(KieSubmissionUnknownError) as info:
            await client.create_task("m", {"prompt": "x"})
    assert len(script.requests) == 1 and sleep.delays == []
    err = info.value
    assert err.retryable is False and err.cause is not None
    assert "may" in str(err)


async def test_create_read_timeout_cause_is_timeout():
    script = Script(httpx.ReadTimeout("read timed out"))
    client, _ = client_with(script)
    async with client:
        with pytest.raises(KieSubmissionUnknownError) as info:
            await client.create_task("m", {"prompt": "x"})
    assert isinstance(info.value.cause, KieTimeoutError)
    assert info.value.cause.request_sent is True


@pytest.mark.parametrize(
    ("failure", "cls"),
    [
        (ok({"code": 501, "msg": "failed"}), KieGenerationFailedError),
        (ok({"code": 500, "msg": "aspect_ratio is required"}), KieValidationError),
        (ok({"code": 422, "msg": "bad"}), KieValidationError),
    ],
)
async def test_create_definite_refusals_are_raised_as_is(failure, cls):
    script = Script(failure)
    client, _ = client_with(script)
    async with client:
        with pytest.raises(cls):
            await client.create_task("m", {"prompt": "x"})
    assert len(script.requests) == 1


async def test_create_455_maintenance_is_not_retried_and_not_unknown():
    from kie_client import KieMaintenanceError

    script = Script(ok({"code": 455, "msg": "maintenance"}))
    client, _ = client_with(script)
    async with client:
        with pytest.raises(KieMaintenanceError):
            await client.create_task("m", {"prompt": "x"})
    assert len(script.requests) == 1
