"""Errors the fake answers with, in the official server's shape, plus errors of the test API."""

from __future__ import annotations

from typing import Any

QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
BLOCKED = "Forbidden: bot was blocked by the user"


class ApiError(Exception):
    """A Bot API failure: becomes `{"ok":false,"error_code":…,"description":…}`."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body

    def headers(self) -> dict[str, str]:
        if self.parameters and "retry_after" in self.parameters:
            return {"Retry-After": str(self.parameters["retry_after"])}
        return {}


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def retry_after(seconds: int) -> ApiError:
    seconds = max(1, int(seconds))
    return ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})


class FakeUserError(Exception):
    """A simulated user cannot do what the test asked (no such button, no invoice, ...)."""
