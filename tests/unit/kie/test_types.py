"""Tolerant parsing of KIE records into typed results."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from kie_client import KieResponseError, TaskCreated, TaskRecord, TaskState, UploadedFile
from tests.unit.kie.fixtures import load


def record(**changes):
    data = dict(load("record_info_success_live")["data"])
    data.update(changes)
    return TaskRecord.from_api(data)


def test_live_success_record():
    r = record()
    assert r.task_id == "32b1348d0d6bf09b002a88315528e574"
    assert r.create_time == datetime(2026, 3, 26, 7, 11, 32, 129000, tzinfo=timezone.utc)
    assert r.complete_time == datetime(2026, 3, 26, 7, 16, 6, 25000, tzinfo=timezone.utc)
    assert r.update_time is None and r.credits_consumed is None
    assert r.cost_time_s == 274.0
    assert r.param["model"] == "nano-banana-2"
    assert r.input["resolution"] == "2K"


def test_docs_record_cost_time_in_ms_is_converted():
    r = TaskRecord.from_api(load("record_info_success_docs")["data"])
    assert r.cost_time_s == 15.0  # docs: 15000 "milliseconds" for a 32 s task
    assert r.fail_code is None and r.fail_msg is None  # "" on success
    assert r.input == {"prompt": "Cinematic portrait...", "aspect_ratio": "3:2"}  # nested variant
    assert r.update_time is not None


def test_cost_time_seconds_assumed_without_timestamps():
    assert record(costTime=21, createTime=None, completeTime=None).cost_time_s == 21.0


@pytest.mark.parametrize("state", ["waiting", "queuing", "generating", "success", "fail", "SUCCESS"])
def test_all_states(state):
    r = record(state=state)
    assert r.state is TaskState(state.lower())
    assert r.is_final is (state.lower() in {"success", "fail"})


@pytest.mark.parametrize("state", ["paused", "", None, 3])
def test_unknown_state_raises_naming_it(state):
    with pytest.raises(KieResponseError, match="unknown task state"):
        record(state=state)


def test_missing_state_or_task_id():
    data = dict(load("record_info_success_live")["data"])
    del data["state"]
    with pytest.raises(KieResponseError, match="no state"):
        TaskRecord.from_api(data)
    with pytest.raises(KieResponseError, match="taskId"):
        record(taskId="")
    with pytest.raises(KieResponseError, match="not an object"):
        TaskRecord.from_api(None)


def test_task_id_snake_case_variant():
    data = dict(load("record_info_success_live")["data"])
    data["task_id"] = data.pop("taskId")
    assert TaskRecord.from_api(data).task_id == "32b1348d0d6bf09b002a88315528e574"


@pytest.mark.parametrize("value", [None, ""])
def test_empty_result_json_on_running_task(value):
    r = record(state="generating", resultJson=value)
    assert r.result_urls == []


def test_bad_result_json_tolerated_unless_success():
    assert record(state="fail", resultJson="{oops").result_urls == []
    with pytest.raises(KieResponseError, match="resultJson"):
        record(resultJson="{oops")
    with pytest.raises(KieResponseError, match="resultUrls"):
        record(resultJson=json.dumps({"resultUrls": "https://x"}))


def test_text_model_result_object_gives_no_urls():
    assert record(resultJson=json.dumps({"resultObject": {"a": 1}})).result_urls == []


def test_fail_code_numeric_and_credits_fractional():
    r = record(state="fail", failCode=422, failMsg="nope", creditsConsumed="3.5")
    assert r.fail_code == "422" and r.fail_msg == "nope" and r.credits_consumed == 3.5


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"param": "{not json"}, "param"),
        ({"param": "[1,2]"}, "param"),
        ({"param": json.dumps({"input": "{bad"})}, "param.input"),
        ({"param": json.dumps({"input": 5})}, "param.input"),
        ({"createTime": "tomorrow"}, "createTime"),
        ({"costTime": True}, "costTime"),
        ({"completeTime": 10**30}, "completeTime"),
    ],
)
def test_unusable_fields(changes, match):
    with pytest.raises(KieResponseError, match=match):
        record(**changes)


def test_missing_param_gives_empty_dicts():
    data = dict(load("record_info_success_live")["data"])
    del data["param"], data["model"]
    r = TaskRecord.from_api(data)
    assert r.param == {} and r.input == {} and r.model == ""


def test_seconds_timestamps_tolerated():
    r = record(createTime=1774509092, completeTime=1774509366)
    assert r.create_time == datetime(2026, 3, 26, 7, 11, 32, tzinfo=timezone.utc)


def test_task_created_variants():
    assert TaskCreated.from_api({"taskId": "a", "recordId": "a"}).record_id == "a"
    assert TaskCreated.from_api({"taskId": "b"}).record_id is None
    for bad in (None, {}, {"taskId": ""}, "abc"):
        with pytest.raises(KieResponseError):
            TaskCreated.from_api(bad)


def test_uploaded_file_both_shapes():
    live = UploadedFile.from_api(load("upload_stream_live")["data"])
    assert live.file_id is None and live.expires_at is None
    assert live.uploaded_at == "2026-03-26T07:11:31.706Z"
    quick = UploadedFile.from_api(load("upload_quickstart_docs")["data"])
    assert quick.file_size == 245760 and quick.uploaded_at == "2025-01-01T12:00:00.000Z"
    only_file_url = UploadedFile.from_api({"fileUrl": "https://h/f.png"})
    assert only_file_url.download_url == "https://h/f.png"
    for bad in (None, {}, {"downloadUrl": "relative/path"}):
        with pytest.raises(KieResponseError):
            UploadedFile.from_api(bad)


def test_models_are_frozen():
    r = record()
    with pytest.raises(Exception):
        r.task_id = "x"
