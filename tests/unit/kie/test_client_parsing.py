"""KieClient request shapes and parsing of recorded KIE responses (httpx.MockTransport)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import httpx
import pytest

from kie_client import KieResponseError, TaskState
from tests.unit.kie.fixtures import API_KEY, Script, load, make_client, ok


async def test_create_task_sends_model_input_callback_with_bearer():
    script = Script(ok(load("create_task_live")))
    async with make_client(script) as client:
        created = await client.create_task(
            "seedream/4.5-text-to-image", {"prompt": "a fox", "aspect_ratio": "1:1"},
            callback_url="https://bot.example/kie/callback/7?token=abc",
        )
    assert created.task_id == "32b1348d0d6bf09b002a88315528e574"
    assert created.record_id == created.task_id
    req = script.requests[0]
    assert req.method == "POST"
    assert str(req.url) == "https://api.kie.test/api/v1/jobs/createTask"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.headers["content-type"] == "application/json"
    assert script.json_body() == {
        "model": "seedream/4.5-text-to-image",
        "input": {"prompt": "a fox", "aspect_ratio": "1:1"},
        "callBackUrl": "https://bot.example/kie/callback/7?token=abc",
    }


async def test_create_task_without_callback_omits_field_and_accepts_docs_shape():
    script = Script(ok(load("create_task_docs")))
    async with make_client(script) as client:
        created = await client.create_task("kling-2.6/text-to-video", {"prompt": "x"})
    assert created.task_id == "task_kling-2.6_1765182425861"
    assert created.record_id is None
    assert "callBackUrl" not in script.json_body()


async def test_get_task_live_waiting_then_success():
    script = Script(ok(load("record_info_waiting_live")), ok(load("record_info_success_live")))
    async with make_client(script) as client:
        waiting = await client.get_task("32b1348d0d6bf09b002a88315528e574")
        done = await client.get_task("32b1348d0d6bf09b002a88315528e574")
    req = script.requests[0]
    assert req.method == "GET"
    assert req.url.path == "/api/v1/jobs/recordInfo"
    assert req.url.params["taskId"] == "32b1348d0d6bf09b002a88315528e574"
    assert waiting.state is TaskState.WAITING and not waiting.is_final
    assert waiting.result_urls == [] and waiting.cost_time_s is None
    assert waiting.fail_code is None and waiting.update_time is None
    assert done.state is TaskState.SUCCESS and done.is_final
    assert done.result_urls == [
        "https://tempfile.aiquickdraw.com/na2/32b1348d0d6bf09b002a88315528e5741913054.jpeg"
    ]
    assert done.cost_time_s == 274.0
    assert done.input["aspect_ratio"] == "9:16"  # input was JSON-encoded twice
    assert done.model == "nano-banana-2"


async def test_get_task_docs_failure_shape():
    script = Script(ok(load("record_info_fail_docs")))
    async with make_client(script) as client:
        record = await client.get_task("task_12345678")
    assert record.state is TaskState.FAIL
    assert record.fail_code == "422"
    assert record.fail_msg.startswith("Invalid prompt")
    assert record.result_urls == []


async def test_get_task_unknown_state_names_it():
    body = load("record_info_waiting_live")
    body["data"]["state"] = "paused"
    async with make_client(Script(ok(body))) as client:
        with pytest.raises(KieResponseError, match="'paused'"):
            await client.get_task("t1")


async def test_get_task_success_without_data_is_response_error():
    async with make_client(Script(ok({"code": 200, "msg": "success", "data": None}))) as client:
        with pytest.raises(KieResponseError, match="without data"):
            await client.get_task("t1")


async def test_download_url_posts_url_and_returns_string():
    script = Script(ok(load("download_url_docs")))
    async with make_client(script) as client:
        link = await client.get_download_url("https://tempfile.aiquickdraw.com/na2/x.jpeg")
    assert link == "https://tempfile.1f6cxxxxxxxxxxxxxxxxxxbd98"
    assert script.requests[0].url.path == "/api/v1/common/download-url"
    assert script.json_body() == {"url": "https://tempfile.aiquickdraw.com/na2/x.jpeg"}


@pytest.mark.parametrize("data", [None, 5, {"url": "x"}, "not a url"])
async def test_download_url_bad_data(data):
    async with make_client(Script(ok({"code": 200, "msg": "success", "data": data}))) as client:
        with pytest.raises(KieResponseError):
            await client.get_download_url("https://tempfile.aiquickdraw.com/a.png")


async def test_credits_live_fractional_is_exact_decimal():
    script = Script(httpx.Response(200, content=json.dumps(load("credit_live")).encode()))
    async with make_client(script) as client:
        credits = await client.get_credits()
    assert credits == Decimal("60.62")
    assert script.requests[0].method == "GET"
    assert script.requests[0].url.path == "/api/v1/chat/credit"


async def test_credits_integer_docs_shape():
    async with make_client(Script(ok({"code": 200, "msg": "success", "data": 100}))) as client:
        assert await client.get_credits() == Decimal(100)


@pytest.mark.parametrize("data", [None, True, "lots", [1]])
async def test_credits_non_number(data):
    async with make_client(Script(ok({"code": 200, "msg": "success", "data": data}))) as client:
        with pytest.raises(KieResponseError):
            await client.get_credits()


async def test_upload_stream_is_multipart_on_upload_host():
    script = Script(ok(load("upload_stream_live")))
    async with make_client(script) as client:
        up = await client.upload_stream(
            b"\xff\xd8jpegbytes", upload_path="/images/user-uploads/",
            file_name="2way-person1.jpg", mime_type="image/jpeg",
        )
    req = script.requests[0]
    assert str(req.url) == "https://upload.kie.test/api/file-stream-upload"
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.headers["content-type"].startswith("multipart/form-data")
    body = req.content
    assert b'name="uploadPath"\r\n\r\nimages/user-uploads' in body
    assert b'name="fileName"\r\n\r\n2way-person1.jpg' in body
    assert b'name="file"; filename="2way-person1.jpg"' in body
    assert b"Content-Type: image/jpeg" in body and b"\xff\xd8jpegbytes" in body
    assert up.download_url == (
        "https://tempfile.redpandaai.co/kieai/183531/images/user-uploads/2way-person1.jpg"
    )
    assert up.file_path == "kieai/183531/images/user-uploads/2way-person1.jpg"
    assert up.file_size == 2352983 and up.mime_type == "image/jpeg"
    assert up.file_name == "2way-person1.jpg"


async def test_upload_base64_bytes_with_mime_becomes_data_url():
    script = Script(ok(load("upload_stream_live")))
    async with make_client(script) as client:
        await client.upload_base64(b"PNGDATA", upload_path="images", file_name="a.png",
                                   mime_type="image/png")
    assert script.requests[0].url.path == "/api/file-base64-upload"
    assert script.json_body() == {
        "base64Data": "data:image/png;base64," + base64.b64encode(b"PNGDATA").decode(),
        "uploadPath": "images",
        "fileName": "a.png",
    }


async def test_upload_base64_string_passes_through_and_quickstart_shape_parses():
    script = Script(ok(load("upload_quickstart_docs")))
    async with make_client(script) as client:
        up = await client.upload_base64("aGVsbG8=", upload_path="images")
    assert script.json_body() == {"base64Data": "aGVsbG8=", "uploadPath": "images"}
    assert up.download_url == "https://kieai.redpandaai.co/download/file_abc123456"
    assert up.file_url == "https://kieai.redpandaai.co/files/images/my-image.jpg"
    assert up.file_id == "file_abc123456"
    assert up.expires_at == "2025-01-04T12:00:00.000Z"
    assert up.file_path == "images"


async def test_upload_url_json_body():
    script = Script(ok(load("upload_stream_live")))
    async with make_client(script) as client:
        await client.upload_url("https://example.com/a.jpg", upload_path="images/x",
                                file_name="a.jpg")
    assert script.requests[0].url.path == "/api/file-url-upload"
    assert script.json_body() == {
        "fileUrl": "https://example.com/a.jpg", "uploadPath": "images/x", "fileName": "a.jpg",
    }


async def test_upload_without_download_url_is_response_error():
    body = load("upload_stream_live")
    del body["data"]["downloadUrl"]
    async with make_client(Script(ok(body))) as client:
        with pytest.raises(KieResponseError, match="downloadUrl"):
            await client.upload_url("https://example.com/a.jpg", upload_path="images")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_task("", {"prompt": "x"}),
        lambda c: c.create_task("m", ["not", "a", "dict"]),
        lambda c: c.get_task("  "),
        lambda c: c.get_download_url(""),
        lambda c: c.upload_stream(b"", upload_path="images"),
        lambda c: c.upload_stream(b"x", upload_path="//"),
        lambda c: c.upload_base64(12, upload_path="images"),
        lambda c: c.upload_url("ftp://x", upload_path="images"),
    ],
)
async def test_bad_arguments_raise_value_error_without_any_request(call):
    script = Script(ok(load("create_task_live")))
    async with make_client(script) as client:
        with pytest.raises(ValueError):
            await call(client)
    assert script.requests == []


def test_empty_api_key_rejected():
    from kie_client import KieClient

    with pytest.raises(ValueError, match="API key"):
        KieClient("  ")
