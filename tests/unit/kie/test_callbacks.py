"""Callback parsing, KIE's webhook HMAC, and our per-generation callback tokens."""

from __future__ import annotations

import json

import pytest

from kie_client import (
    KieResponseError,
    TaskState,
    check_callback_token,
    make_callback_token,
    parse_callback,
    sign_webhook,
    verify_webhook_signature,
)
from tests.unit.kie.fixtures import raw

KEY = "test-webhook-hmac-key"
TASK = "ee9c2715375b7837f8bb51d641ff5863"
TS = "1769670760"
SIG = "xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4="


def test_sign_matches_test_vector():
    assert sign_webhook(KEY, TASK, 1769670760) == SIG
    assert sign_webhook(KEY.encode(), TASK, TS) == SIG


def test_verify_accepts_vector_within_window_both_ways():
    assert verify_webhook_signature(KEY, TASK, TS, SIG, now=int(TS))
    assert verify_webhook_signature(KEY, TASK, TS, SIG, now=int(TS) + 300)
    assert verify_webhook_signature(KEY, TASK, TS, SIG, now=int(TS) - 300)
    assert verify_webhook_signature(KEY, TASK, f" {TS} ", f" {SIG} ", now=int(TS))


@pytest.mark.parametrize("now", [int(TS) + 301, int(TS) - 301, int(TS) + 86400])
def test_verify_rejects_stale_or_future(now):
    assert not verify_webhook_signature(KEY, TASK, TS, SIG, now=now)


def test_tolerance_configurable():
    assert verify_webhook_signature(KEY, TASK, TS, SIG, now=int(TS) + 1000, tolerance_s=1000)
    assert not verify_webhook_signature(KEY, TASK, TS, SIG, now=int(TS) + 10, tolerance_s=5)


@pytest.mark.parametrize(
    ("key", "task", "ts", "sig"),
    [
        ("other-key", TASK, TS, SIG),
        (KEY, TASK[:-1] + "4", TS, SIG),
        (KEY, TASK, "1769670761", sign_webhook(KEY, TASK, TS)),
        (KEY, TASK, TS, SIG[:-2] + "A="),
        (KEY, TASK, TS, ""),
        (KEY, TASK, TS, None),
        (KEY, TASK, None, SIG),
        (KEY, TASK, "", SIG),
        (KEY, TASK, "17696707.60", SIG),
        (KEY, TASK, "-1769670760", SIG),
        (KEY, TASK, "１７６９６７０７６０", SIG),
        (KEY, TASK, "9" * 40, SIG),
        (KEY, TASK, TS, "not base64 !!"),
        (KEY, TASK, TS, "xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4"),
        (KEY, TASK, TS, "ü" * 44),
        (KEY, TASK, TS, 12345),
        ("", TASK, TS, SIG),
        (KEY, "", TS, SIG),
    ],
)
def test_verify_rejects_tampered_and_garbage(key, task, ts, sig):
    assert verify_webhook_signature(key, task, ts, sig, now=int(TS)) is False


def test_verify_uses_wall_clock_by_default():
    import time

    now = str(int(time.time()))
    assert verify_webhook_signature(KEY, TASK, now, sign_webhook(KEY, TASK, now))
    assert not verify_webhook_signature(KEY, TASK, TS, SIG)  # 2026-01 stamp is long stale


def test_callback_token_roundtrip_and_shape():
    token = make_callback_token("s3cret", 42)
    assert len(token) == 32
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert token == make_callback_token("s3cret", "42")
    assert check_callback_token("s3cret", 42, token)
    assert not check_callback_token("s3cret", 43, token)
    assert not check_callback_token("other", 42, token)
    assert not check_callback_token("s3cret", 42, token[:-1])
    assert not check_callback_token("s3cret", 42, None)
    assert not check_callback_token("s3cret", 42, "ü" * 32)
    assert not check_callback_token("", 42, token)
    assert make_callback_token("s3cret", 1) != make_callback_token("s3cret", 2)


def test_callback_token_refuses_empty_secret():
    with pytest.raises(ValueError):
        make_callback_token("", 1)


def test_parse_success_callback():
    cb = parse_callback(raw("callback_success_docs"))
    assert cb.task_id == "e989621f54392584b05867f87b160672"
    assert cb.code == 200 and cb.msg == "Playground task completed successfully."
    assert cb.state is TaskState.SUCCESS
    assert cb.record.result_urls == ["https://file.aiquickdraw.com/v/e989621f.mp4"]
    assert cb.record.credits_consumed == 70.0
    assert cb.record.cost_time_s == 8.0
    assert cb.record.input == {"prompt": "a cat"}


def test_parse_failure_callback_501():
    cb = parse_callback(raw("callback_fail_docs"))
    assert cb.code == 501 and cb.state is TaskState.FAIL
    assert cb.record.fail_code == "500" and cb.record.fail_msg == "Internal server error"
    assert cb.record.result_urls == []


def test_parse_webhook_page_shape_with_task_id_variants():
    cb = parse_callback(raw("callback_hook_docs"))
    assert cb.task_id == TASK and cb.state is None and cb.record is None
    body = {"code": 200, "msg": "ok", "data": {"task_id": "abc", "state": "success",
                                                "resultJson": '{"resultUrls":["https://x/y.png"]}'}}
    cb = parse_callback(json.dumps(body).encode())
    assert cb.task_id == "abc" and cb.record.task_id == "abc"
    assert cb.record.result_urls == ["https://x/y.png"]
    assert parse_callback(b'{"code":"200","taskId":"top","data":null}').task_id == "top"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty"),
        (b"<html></html>", "not valid JSON"),
        (b'{"code":200,"data":{"taskId":"a"', "not valid JSON"),
        (b"[1]", "not an object"),
        (b'{"data":{"taskId":"a"}}', "integer code"),
        (b'{"code":true,"data":{"taskId":"a"}}', "integer code"),
        (b'{"code":200,"data":[]}', "not an object"),
        (b'{"code":200,"data":{"state":"success"}}', "task id"),
        (b'{"code":200,"data":{"taskId":"a","state":"exploded"}}', "exploded"),
        (b'{"code":200,"data":{"taskId":"a","state":"success","resultJson":"{bad"}}', "resultJson"),
        (b'{"code":200,"data":{"taskId":"a","state":"success","createTime":"soon"}}', "createTime"),
        ("🙂".encode() * 10, "not valid JSON"),
    ],
)
def test_parse_bad_bodies(body, match):
    with pytest.raises(KieResponseError, match=match):
        parse_callback(body)


def test_parse_size_cap():
    big = b'{"code":200,"taskId":"a","pad":"' + b"x" * 2_000_000 + b'"}'
    with pytest.raises(KieResponseError, match="limit"):
        parse_callback(big)
    assert parse_callback(big, max_bytes=3_000_000).task_id == "a"


def test_parse_deeply_nested_json_is_an_error_not_a_crash():
    with pytest.raises(KieResponseError):
        parse_callback(b"[" * 100_000 + b"]" * 100_000, max_bytes=10**6)
