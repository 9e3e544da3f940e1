"""Veo's record-info and callback bodies normalised to the Market types (kie_client/veo.py)."""

from __future__ import annotations

import json

import pytest

from kie_client import KieResponseError, TaskState
from kie_client.providers import Providers, UnknownProviderError, VeoProvider
from kie_client.catalog import Catalog
from kie_client.veo import parse_veo_callback, veo_record

URL = "https://tempfile.aiquickdraw.com/v/abc.mp4"


@pytest.mark.parametrize(("flag", "state"), [
    (0, TaskState.GENERATING), (1, TaskState.SUCCESS), (2, TaskState.FAIL), (3, TaskState.FAIL),
    ("1", TaskState.SUCCESS),
])
def test_success_flag_maps_to_the_market_states(flag, state):
    record = veo_record({"taskId": "t1", "successFlag": flag,
                         "response": {"resultUrls": [URL]}, "errorMessage": "boom"})
    assert record.state is state
    assert record.result_urls == ([URL] if state is TaskState.SUCCESS else [])
    if state is TaskState.FAIL:
        assert record.fail_code == str(flag) and record.fail_msg == "boom"


@pytest.mark.parametrize("flag", [None, 4, True, "x"])
def test_an_unknown_success_flag_is_a_response_error(flag):
    with pytest.raises(KieResponseError, match="successFlag"):
        veo_record({"taskId": "t1", "successFlag": flag})


def test_full_result_urls_stand_in_when_result_urls_are_missing_and_text_dates_are_ignored():
    record = veo_record({"taskId": "t1", "successFlag": 1, "response": {"fullResultUrls": [URL]},
                         "paramJson": json.dumps({"model": "veo3_fast", "prompt": "x"}),
                         "createTime": "2025-06-06 10:00:00", "completeTime": 1749204000000,
                         "errorCode": 500})
    assert record.result_urls == [URL] and record.model == "veo3_fast"
    assert record.create_time is None and record.complete_time is not None
    assert record.fail_code is None  # a success carries no failure


@pytest.mark.parametrize("urls", [[URL], json.dumps([URL]), f"[{URL}]", URL])
def test_callback_result_urls_in_every_shape_kie_shows(urls):
    body = json.dumps({"code": 200, "msg": "Veo3.1 video generated successfully.",
                       "data": {"taskId": "t9", "info": {"resultUrls": urls}, "fallbackFlag": False}})
    cb = parse_veo_callback(body.encode())
    assert cb.task_id == "t9" and cb.state is TaskState.SUCCESS and cb.record.result_urls == [URL]


def test_a_failure_callback_carries_its_code_and_reason():
    body = json.dumps({"code": 501, "msg": "Internal Error - Timeout", "data": {"taskId": "t9"}})
    cb = parse_veo_callback(body.encode())
    assert cb.state is TaskState.FAIL and cb.record.fail_code == "501"
    assert cb.record.fail_msg == "Internal Error - Timeout" and not cb.record.result_urls


@pytest.mark.parametrize("body", [b"", b"[]", b'{"code": 200}', b'{"code": "ok", "data": {"taskId": "t"}}',
                                  b'{"code": 200, "data": {"taskId": "t", "info": {"resultUrls": [1]}}}'])
def test_malformed_callbacks_are_refused(body):
    with pytest.raises(KieResponseError):
        parse_veo_callback(body)


def test_the_body_names_model_and_type_and_the_registry_picks_by_spec_api():
    catalog = Catalog()
    spec = catalog.get("veo31_quality")
    body = VeoProvider.body(spec, catalog.build_input(spec.key, "x", {}, image_urls=[URL]), "https://b/cb")
    assert body == {"model": "veo3", "prompt": "x", "imageUrls": [URL], "aspect_ratio": "16:9",
                    "resolution": "720p", "enableTranslation": True,
                    "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO", "callBackUrl": "https://b/cb"}
    text_only = VeoProvider.body(spec, catalog.build_input(spec.key, "x", {}), None)
    assert "imageUrls" not in text_only and text_only["generationType"] == "TEXT_2_VIDEO"

    class Kie:  # the providers only keep the client until a call
        pass

    providers = Providers.for_client(Kie())  # type: ignore[arg-type]
    assert providers.for_spec(spec).name == "veo" and providers.get(None).name == "market"
    with pytest.raises(UnknownProviderError, match="suno"):
        providers.get("suno")
