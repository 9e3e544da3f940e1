"""Typed errors for everything that can go wrong talking to KIE.

KIE reports failures two ways: an HTTP status, or HTTP 200 with the real status in the body's
`code` (kie-api.md §7 — the evidence is mixed, so both are checked). `error_for` turns either
into one class per failure kind. Every error carries `.user_reason`: a short English reason a
user or operator can act on, so callers never have to show KIE's raw wording ("Premium").

Secrets: errors never hold the API key. The client attaches a *sanitised* copy of the response
(Authorization header redacted, no request body) and scrubs the key from messages.
"""

from __future__ import annotations

import httpx

__all__ = [
    "KieError",
    "KieConnectionError",
    "KieTimeoutError",
    "KieSubmissionUnknownError",
    "KieResponseError",
    "KieAPIStatusError",
    "KieAuthError",
    "KieInsufficientCreditsError",
    "KieNotFoundError",
    "KieTaskNotFoundError",
    "KieUpstreamTimeoutError",
    "KieValidationError",
    "KieRateLimitError",
    "KieQuotaExceededError",
    "KieMaintenanceError",
    "KieServerError",
    "KieGenerationFailedError",
    "KieFeatureDisabledError",
    "KieUploadError",
    "error_for",
]

_MAX_REASON_DETAIL = 160


def _short(text: str, limit: int = _MAX_REASON_DETAIL) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class KieError(Exception):
    """Base class. `retryable` says whether repeating the same call may succeed."""

    default_reason = "the generation service returned an error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        user_reason: str | None = None,
        status_code: int | None = None,
        body_code: int | None = None,
        response: httpx.Response | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.user_reason = user_reason or self.default_reason
        self.status_code = status_code
        self.body_code = body_code
        self.response = response
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status_code={self.status_code!r}, "
            f"body_code={self.body_code!r}, retryable={self.retryable!r})"
        )


class KieConnectionError(KieError):
    """The request could not be completed at the transport level.

    `request_sent` is False only when the failure certainly happened before any byte of the
    request reached KIE (connect failure); createTask relies on that to decide on a retry.
    """

    default_reason = "could not reach the generation service, try again later"
    retryable = True

    def __init__(self, message: str, *, request_sent: bool = True, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.request_sent = request_sent


class KieTimeoutError(KieConnectionError):
    default_reason = "the generation service did not answer in time, try again later"


class KieSubmissionUnknownError(KieError):
    """createTask may or may not have created (and billed) a task.

    Raised instead of retrying because KIE has no idempotency key: a blind retry could create a
    second billed task. The caller should wait for the callback (its URL names the generation)
    or reconcile later. `cause` is the underlying error.
    """

    default_reason = (
        "the generation service did not confirm the request; it may still start, "
        "so we are waiting for its result instead of submitting again"
    )
    retryable = False

    def __init__(self, message: str, *, cause: KieError | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.cause = cause


class KieResponseError(KieError):
    """KIE answered with something we cannot interpret (HTML, truncated JSON, missing fields)."""

    default_reason = "the generation service sent a response we could not understand"


class KieAPIStatusError(KieError):
    """KIE answered with an error status (HTTP or body `code`)."""

    default_reason = "the generation service rejected the request"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        # Seconds from a Retry-After header, when KIE (or a proxy) sent one.
        self.retry_after = retry_after

    @property
    def code(self) -> int | None:
        """The status that decided the class: the body code if it is an error, else HTTP."""
        if self.body_code is not None and self.body_code != 200:
            return self.body_code
        return self.status_code


class KieAuthError(KieAPIStatusError):
    default_reason = "the generation service rejected our API key; an operator must check it"


class KieInsufficientCreditsError(KieAPIStatusError):
    default_reason = "the service account is out of credits; an operator must top it up"


class KieNotFoundError(KieAPIStatusError):
    default_reason = "the generation service could not find what was asked for"


class KieTaskNotFoundError(KieNotFoundError):
    """KIE has no record of the task id (live answer: 422 "recordInfo is null")."""

    default_reason = "the generation service has no record of this task"


class KieUpstreamTimeoutError(KieAPIStatusError):
    default_reason = "the model returned no result for too long"


class KieValidationError(KieAPIStatusError):
    default_reason = "the generation service rejected the request parameters"


class KieRateLimitError(KieAPIStatusError):
    default_reason = "too many requests right now, try again in a moment"
    retryable = True


class KieQuotaExceededError(KieAPIStatusError):
    default_reason = "the service key reached its usage limit; an operator must raise it"


class KieMaintenanceError(KieAPIStatusError):
    default_reason = "the generation service is under maintenance, try again later"
    retryable = True


class KieServerError(KieAPIStatusError):
    default_reason = "the generation service had an internal error, try again later"
    retryable = True


class KieGenerationFailedError(KieAPIStatusError):
    default_reason = "the generation failed on the service side"


class KieFeatureDisabledError(KieAPIStatusError):
    default_reason = "this model is not enabled for the service account"


class KieUploadError(KieAPIStatusError):
    default_reason = "the file upload was rejected"


_BY_CODE: dict[int, type[KieAPIStatusError]] = {
    400: KieValidationError,
    401: KieAuthError,
    402: KieInsufficientCreditsError,
    404: KieNotFoundError,
    408: KieUpstreamTimeoutError,
    422: KieValidationError,
    429: KieRateLimitError,
    433: KieQuotaExceededError,
    455: KieMaintenanceError,
    500: KieServerError,
    501: KieGenerationFailedError,
    505: KieFeatureDisabledError,
}


def _effective_code(status_code: int | None, body_code: int | None) -> int | None:
    if body_code is not None and body_code != 200:
        return body_code
    if status_code is not None and status_code >= 400:
        return status_code
    return body_code if body_code is not None else status_code


def error_for(
    status_code: int | None,
    body_code: int | None,
    message: str,
    response: httpx.Response | None,
    *,
    upload: bool = False,
    retry_after: float | None = None,
) -> KieAPIStatusError:
    """Build the error for a failed call.

    The body `code` wins over the HTTP status when it names an error, because KIE often
    answers HTTP 200 with the real status in the body. `upload=True` applies the upload host's
    own meanings (400/405 are rejected uploads, not generation-parameter errors).
    """
    code = _effective_code(status_code, body_code)
    message = message or ""
    lowered = message.lower()
    kwargs = {
        "status_code": status_code, "body_code": body_code, "response": response,
        "retry_after": retry_after,
    }
    text = f"KIE error {code}: {message}" if message else f"KIE error {code}"

    if upload and code in (400, 405):
        detail = f": {_short(message)}" if message else ""
        return KieUploadError(text, user_reason=f"the file upload was rejected{detail}", **kwargs)
    if code == 422 and "recordinfo is null" in lowered:
        return KieTaskNotFoundError(text, **kwargs)
    if code in (422, 403) and ("premium" in lowered or "not enabled" in lowered):
        # KIE's wording here is a bare "Premium"; what the operator can act on is the plan.
        return KieFeatureDisabledError(text, **kwargs)
    if code == 500 and "is required" in lowered:
        # Live probes: a missing required input field comes back as 500 "<field> is required".
        return KieValidationError(
            text, user_reason=f"the request is missing a parameter: {_short(message)}", **kwargs
        )
    cls = _BY_CODE.get(code or 0)
    if cls is KieValidationError:
        detail = f": {_short(message)}" if message else ""
        return KieValidationError(
            text, user_reason=f"the generation service rejected the request{detail}", **kwargs
        )
    if cls is not None:
        return cls(text, **kwargs)
    if code is not None and code >= 500:
        # 502/503/504 from a proxy in front of KIE: transient by nature.
        return KieServerError(text, **kwargs)
    return KieAPIStatusError(
        text, user_reason=f"the generation service rejected the request (code {code})", **kwargs
    )
