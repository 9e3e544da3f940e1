"""error_for: one class per failure kind, from the HTTP status or the body code."""

from __future__ import annotations

import pytest

from kie_client import (
    KieAPIStatusError,
    KieAuthError,
    KieError,
    KieFeatureDisabledError,
    KieGenerationFailedError,
    KieInsufficientCreditsError,
    KieMaintenanceError,
    KieNotFoundError,
    KieQuotaExceededError,
    KieRateLimitError,
    KieServerError,
    KieTaskNotFoundError,
    KieUploadError,
    KieUpstreamTimeoutError,
    KieValidationError,
    error_for,
)

TABLE = [
    (401, "You do not have access permissions", KieAuthError, False),
    (402, "Credits insufficient : Your current balance isn't enough", KieInsufficientCreditsError, False),
    (404, "Task not found", KieNotFoundError, False),
    (408, "upstream timeout", KieUpstreamTimeoutError, False),
    (400, "taskId parameter is required", KieValidationError, False),
    (422, "Invalid URL", KieValidationError, False),
    (422, "recordInfo is null", KieTaskNotFoundError, False),
    (429, "Rate limit exceeded", KieRateLimitError, True),
    (433, "sub-key usage exceeds its limit", KieQuotaExceededError, False),
    (455, "Service unavailable", KieMaintenanceError, True),
    (500, "Internal server error", KieServerError, True),
    (500, "aspect_ratio is required", KieValidationError, False),
    (501, "Generation failed", KieGenerationFailedError, False),
    (505, "Feature disabled", KieFeatureDisabledError, False),
    (502, "", KieServerError, True),
    (418, "teapot", KieAPIStatusError, False),
]


@pytest.mark.parametrize(("code", "msg", "cls", "retryable"), TABLE)
def test_body_code_on_http_200(code, msg, cls, retryable):
    err = error_for(200, code, msg, None)
    assert type(err) is cls
    assert err.status_code == 200 and err.body_code == code and err.code == code
    assert err.retryable is retryable
    assert isinstance(err, KieError)
    assert err.user_reason and err.user_reason != msg


@pytest.mark.parametrize(("code", "msg", "cls", "retryable"), TABLE)
def test_http_status_without_body_code(code, msg, cls, retryable):
    err = error_for(code, None, msg, None)
    assert type(err) is cls
    assert err.code == code and err.body_code is None
    assert err.retryable is retryable


def test_body_code_wins_over_http_status():
    err = error_for(400, 402, "Credits insufficient", None)
    assert isinstance(err, KieInsufficientCreditsError)
    assert err.status_code == 400 and err.code == 402


def test_task_not_found_is_a_not_found():
    assert isinstance(error_for(200, 422, "recordInfo is null", None), KieNotFoundError)


@pytest.mark.parametrize("msg", ["Premium", "This model is not enabled for your plan"])
def test_premium_422_is_feature_disabled_with_actionable_reason(msg):
    err = error_for(200, 422, msg, None)
    assert isinstance(err, KieFeatureDisabledError)
    assert err.user_reason == "this model is not enabled for the service account"


def test_user_reasons_are_actionable():
    assert error_for(200, 402, "x", None).user_reason.startswith(
        "the service account is out of credits"
    )
    assert error_for(200, 455, "x", None).user_reason == (
        "the generation service is under maintenance, try again later"
    )
    assert error_for(200, 505, "x", None).user_reason == (
        "this model is not enabled for the service account"
    )
    assert "aspect_ratio is required" in error_for(200, 500, "aspect_ratio is required", None).user_reason


@pytest.mark.parametrize(("code", "cls"), [(400, KieUploadError), (405, KieUploadError),
                                           (401, KieAuthError), (500, KieServerError)])
def test_upload_host_codes(code, cls):
    err = error_for(code, code, "Missing required parameter: uploadPath", None, upload=True)
    assert type(err) is cls
    if cls is KieUploadError:
        assert "uploadPath" in err.user_reason


def test_rate_limit_carries_retry_after():
    err = error_for(429, None, "Rate limit exceeded", None, retry_after=7.0)
    assert isinstance(err, KieRateLimitError) and err.retry_after == 7.0


def test_str_and_repr_are_plain():
    err = error_for(200, 402, "Credits insufficient", None)
    assert str(err) == "KIE error 402: Credits insufficient"
    assert repr(err).startswith("KieInsufficientCreditsError(") and "402" in repr(err)


def test_long_kie_message_is_shortened_in_user_reason():
    err = error_for(200, 422, "x" * 1000, None)
    assert len(err.user_reason) < 250
