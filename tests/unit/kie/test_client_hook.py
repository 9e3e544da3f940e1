"""KieClient's on_response hook: one report per HTTP attempt, what the app's metrics are fed."""

from __future__ import annotations

import httpx
import pytest

from kie_client import KieConnectionError, KieInsufficientCreditsError, RetryPolicy
from tests.unit.kie.fixtures import Script, load, make_client, ok

SERVER_500 = {"code": 500, "msg": "Internal server error"}


class Reports(list):
    def __call__(self, endpoint, status, body_code, seconds) -> None:
        assert seconds >= 0
        self.append((endpoint, status, body_code))


async def test_each_attempt_is_reported_with_endpoint_status_and_body_code():
    reports = Reports()
    script = Script(ok(SERVER_500), httpx.ConnectError("refused"),
                    ok(load("record_info_success_live")))
    async with make_client(script, on_response=reports,
                           retry=RetryPolicy(max_attempts=3, rng=lambda: 0.0)) as client:
        record = await client.get_task("32b1348d0d6bf09b002a88315528e574")
    assert record.is_final
    assert reports == [("recordInfo", 200, 500), ("recordInfo", "ConnectError", None),
                       ("recordInfo", 200, 200)]


async def test_create_upload_and_http_errors_name_their_endpoint():
    reports = Reports()
    script = Script(ok(load("create_task_live")), ok({"code": 402, "msg": "no credits"}, 402),
                    ok(load("upload_stream_live")))
    async with make_client(script, on_response=reports) as client:
        await client.create_task("bytedance/seedream", {"prompt": "x"})
        with pytest.raises(KieInsufficientCreditsError):
            await client.get_credits()
        await client.upload_stream(b"png", upload_path="images/u", file_name="a.png")
    assert reports == [("createTask", 200, 200), ("credit", 402, 402),
                       ("file-stream-upload", 200, 200)]


async def test_a_failing_hook_never_breaks_a_call():
    def broken(*args):
        raise RuntimeError("observer bug")

    script = Script(httpx.ConnectError("refused"))
    async with make_client(script, on_response=broken,
                           retry=RetryPolicy(max_attempts=1, rng=lambda: 0.0)) as client:
        with pytest.raises(KieConnectionError):  # the call's own error, not the hook's
            await client.get_task("t1")
    script = Script(ok(load("record_info_success_live")))
    async with make_client(script, on_response=broken) as client:
        assert (await client.get_task("t1")).is_final
