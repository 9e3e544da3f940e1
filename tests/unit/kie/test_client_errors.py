"""KieClient error mapping through the wire: HTTP status and body code, bad bodies, secrets."""

from __future__ import annotations

import logging

import httpx
import pytest

from kie_client import (
    KieAuthError,
    KieError,
    KieFeatureDisabledError,
    KieInsufficientCreditsError,
    KieMaintenanceError,
    KieResponseError,
    KieServerError,
    KieTaskNotFoundError,
    KieUploadError,
    KieValidationError,
    RetryPolicy,
)
from tests.unit.kie.fixtures import API_KEY, Script, load, make_client, ok

NO_RETRY = RetryPolicy.none()


@pytest.mark.parametrize("http_status", [200, 402])
async def test_insufficient_credits_both_ways(http_status):
    body = {"code": 402, "msg": "Credits insufficient : Your current balance isn't enough to run "
            "this request. Please top up to continue.", "data": None}
    async with make_client(Script(ok(body, http_status))) as client:
        with pytest.raises(KieInsufficientCreditsError) as info:
            await client.create_task("m", {"prompt": "x"})
    assert info.value.status_code == http_status and info.value.code == 402


async def test_http_402_without_body_code():
    async with make_client(Script(ok({"msg": "Credits insufficient"}, 402))) as client:
        with pytest.raises(KieInsufficientCreditsError):
            await client.get_credits()


async def test_record_info_null_is_task_not_found():
    async with make_client(Script(ok(load("record_info_null")))) as client:
        with pytest.raises(KieTaskNotFoundError) as info:
            await client.get_task("deadbeef")
    assert info.value.user_reason == "the generation service has no record of this task"


async def test_message_key_variant_is_read():
    body = {"code": 500, "message": "duration is required"}
    async with make_client(Script(ok(body))) as client:
        with pytest.raises(KieValidationError, match="duration is required"):
            await client.create_task("m", {"prompt": "x"})


async def test_maintenance_on_read_exhausts_retries_then_raises():
    script = Script(ok({"code": 455, "msg": "Service unavailable"}))
    async with make_client(script) as client:
        with pytest.raises(KieMaintenanceError) as info:
            await client.get_credits()
    assert len(script.requests) == 4
    assert "maintenance" in info.value.user_reason


async def test_feature_disabled_505():
    async with make_client(Script(ok({"code": 505, "msg": "Premium"}))) as client:
        with pytest.raises(KieFeatureDisabledError) as info:
            await client.create_task("m", {"prompt": "x"})
    assert "Premium" not in info.value.user_reason


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"success": False, "code": 400, "msg": "Missing required parameter: uploadPath"}),
        (200, {"success": False, "code": 400, "msg": "Base64 decoding failed: Invalid Base64 format"}),
        (405, {"success": False, "code": 405, "msg": "Method not allowed"}),
        (200, {"success": False, "code": 200, "msg": "weird"}),
    ],
)
async def test_upload_rejections(status, body):
    async with make_client(Script(ok(body, status))) as client:
        with pytest.raises(KieUploadError):
            await client.upload_base64("aGk=", upload_path="images")


async def test_upload_auth_failure():
    body = {"success": False, "code": 401, "msg": "Authentication failed: Invalid API Key"}
    async with make_client(Script(ok(body, 401))) as client:
        with pytest.raises(KieAuthError):
            await client.upload_url("https://e.com/a.png", upload_path="images")


# ---------------------------------------------------------------- bad bodies

HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


async def test_html_on_200_is_response_error_with_preview():
    resp = httpx.Response(200, content=HTML, headers={"content-type": "text/html"})
    async with make_client(Script(resp)) as client:
        with pytest.raises(KieResponseError) as info:
            await client.get_task("t1")
    assert "non-JSON" in str(info.value) and "text/html" in str(info.value)
    assert "<!DOCTYPE html>" in str(info.value)


async def test_html_on_502_is_server_error_and_retried():
    resp = httpx.Response(502, content=HTML, headers={"content-type": "text/html"})
    script = Script(resp, ok(load("credit_live")))
    async with make_client(script) as client:
        assert await client.get_credits() > 0
    assert len(script.requests) == 2


async def test_html_on_502_exhausted_is_server_error():
    resp = httpx.Response(502, content=HTML, headers={"content-type": "text/html"})
    async with make_client(Script(resp), retry=NO_RETRY) as client:
        with pytest.raises(KieServerError) as info:
            await client.get_credits()
    assert info.value.status_code == 502


async def test_truncated_json_is_response_error():
    resp = httpx.Response(200, content=b'{"code":200,"msg":"success","data":{"taskId":"ab')
    async with make_client(Script(resp)) as client:
        with pytest.raises(KieResponseError, match="non-JSON"):
            await client.get_task("t1")


@pytest.mark.parametrize("content", [b"", b"[1,2]", b'"text"', b"null"])
async def test_non_object_bodies(content):
    async with make_client(Script(httpx.Response(200, content=content))) as client:
        with pytest.raises(KieResponseError):
            await client.get_credits()


@pytest.mark.parametrize("body", [{"msg": "success", "data": 5}, {"code": "abc", "data": 5},
                                  {"code": True, "data": 5}])
async def test_missing_or_bad_code(body):
    async with make_client(Script(ok(body))) as client:
        with pytest.raises(KieResponseError, match="code"):
            await client.get_credits()


async def test_20mb_body_is_refused_without_reading_it_all():
    chunks_read = []

    async def stream():
        for _ in range(20):
            chunks_read.append(1)
            yield b" " * (1024 * 1024)

    def reply(request):
        return httpx.Response(200, content=stream())

    async with make_client(Script(reply)) as client:
        with pytest.raises(KieResponseError, match="exceeds"):
            await client.get_credits()
    assert len(chunks_read) <= 3


async def test_declared_huge_content_length_refused():
    resp = httpx.Response(200, content=b"{}", headers={"content-length": str(20 * 1024 * 1024)})
    async with make_client(Script(resp)) as client:
        with pytest.raises(KieResponseError, match="exceeds"):
            await client.get_credits()


async def test_missing_task_id_in_record():
    body = load("record_info_waiting_live")
    del body["data"]["taskId"]
    async with make_client(Script(ok(body))) as client:
        with pytest.raises(KieResponseError, match="taskId"):
            await client.get_task("t1")


# ---------------------------------------------------------------- secrets


def _chain(err: BaseException) -> list[BaseException]:
    found, current = [], err.__context__
    while current is not None and len(found) < 10:
        found.append(current)
        current = current.__context__
    return found


async def test_api_key_never_exposed(caplog):
    caplog.set_level(logging.DEBUG)
    script = Script(
        ok({"code": 401, "msg": "You do not have access permissions"}, 401),
        httpx.Response(200, content=b"<html>oops</html>"),
        httpx.ConnectError("connection refused"),
        ok({"code": 500, "msg": f"echo {API_KEY}"}),
    )
    errors: list[KieError] = []
    async with make_client(script, retry=NO_RETRY) as client:
        assert API_KEY not in repr(client) and API_KEY not in str(client)
        for call in (client.get_credits, client.get_credits, client.get_credits,
                     lambda: client.get_task("t")):
            with pytest.raises(KieError) as info:
                await call()
            errors.append(info.value)
    assert len(script.requests) == 4
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in script.requests)
    for err in errors:
        for text in (str(err), repr(err), err.message, err.user_reason, str(err.args)):
            assert API_KEY not in text
        assert err.__cause__ is None
        # Error reporters (Sentry and the like) walk __context__ too: nothing down the chain may
        # hold a request carrying the key.
        chained, seen = err.__context__, 0
        while chained is not None and seen < 10:
            request = getattr(chained, "request", None) if isinstance(
                chained, httpx.HTTPError) else None
            assert request is None or API_KEY not in str(dict(request.headers))
            assert API_KEY not in repr(chained)
            chained, seen = chained.__context__, seen + 1
        assert not any(isinstance(e, httpx.HTTPError) for e in _chain(err))
        if err.response is not None:
            assert API_KEY not in repr(err.response.request.headers)
            assert API_KEY not in str(dict(err.response.request.headers))
            assert err.response.request.headers["authorization"] == "Bearer [redacted]"
    assert errors[0].response.status_code == 401
    assert caplog.records, "each call should log a line"
    assert API_KEY not in caplog.text


async def test_one_log_line_per_call_with_method_path_status(caplog):
    caplog.set_level(logging.INFO, logger="kie_client")
    async with make_client(Script(ok(load("credit_live")))) as client:
        await client.get_credits()
    lines = [r.getMessage() for r in caplog.records if r.name == "kie_client"]
    assert len(lines) == 1
    assert "GET /api/v1/chat/credit -> 200 in" in lines[0] and " ms" in lines[0]


async def test_undecodable_content_encoding_is_response_error():
    async def body():
        yield b"definitely not gzip"

    def reply(request):
        return httpx.Response(200, content=body(), headers={"content-encoding": "gzip"})

    async with make_client(Script(reply)) as client:
        with pytest.raises(KieResponseError, match="decoded"):
            await client.get_credits()


async def test_log_line_names_body_code_on_http_200_errors(caplog):
    caplog.set_level(logging.INFO, logger="kie_client")
    async with make_client(Script(ok({"code": 402, "msg": "no credits"}))) as client:
        with pytest.raises(KieInsufficientCreditsError):
            await client.create_task("m", {"prompt": "x"})
    lines = [r.getMessage() for r in caplog.records if r.name == "kie_client"]
    assert len(lines) == 1 and "POST /api/v1/jobs/createTask -> 200 code=402 in" in lines[0]
