"""KIE callbacks: parsing the POST body, checking KIE's optional HMAC signature, and our own
per-generation callback tokens.

KIE signs only `taskId + "." + timestamp` (never the body) and documents no replay window
(kie-api.md §3.3); we accept ±300 s. Because signing is opt-in on KIE's side, every callback URL
we hand out also carries our own token (`make_callback_token`) bound to the generation id, so a
forged POST cannot complete someone else's generation even when KIE's signing is off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

from .errors import KieResponseError
from .types import CallbackPayload, TaskRecord

__all__ = [
    "MAX_CALLBACK_BYTES",
    "parse_callback",
    "sign_webhook",
    "verify_webhook_signature",
    "make_callback_token",
    "check_callback_token",
]

MAX_CALLBACK_BYTES = 1024 * 1024
_TOKEN_LEN = 32


def parse_callback(body: bytes, *, max_bytes: int = MAX_CALLBACK_BYTES) -> CallbackPayload:
    """Parse a Market callback body. The task id may sit at data.taskId, data.task_id or taskId."""
    doc = callback_document(body, max_bytes=max_bytes)
    code = callback_code(doc)
    data = doc.get("data")
    if data is not None and not isinstance(data, dict):
        raise KieResponseError(f"callback data is a {type(data).__name__}, not an object")
    data = data or {}
    task_id = _task_id(data.get("taskId")) or _task_id(data.get("task_id")) or _task_id(
        doc.get("taskId")
    )
    if not task_id:
        raise KieResponseError("callback carries no task id (data.taskId, data.task_id, taskId)")

    record = None
    if "state" in data:
        record = TaskRecord.from_api({**data, "taskId": task_id})
    msg = doc.get("msg") or doc.get("message") or ""
    return CallbackPayload(
        task_id=task_id, code=code, msg=str(msg), state=record.state if record else None,
        record=record,
    )


def callback_document(body: bytes, *, max_bytes: int = MAX_CALLBACK_BYTES) -> dict:
    """The JSON object of a callback body (every API shape), or KieResponseError saying why not."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, (bytes, bytearray)):
        raise KieResponseError(f"callback body must be bytes, got {type(body).__name__}")
    if len(body) > max_bytes:
        raise KieResponseError(f"callback body is {len(body)} bytes, over the {max_bytes} limit")
    if not body.strip():
        raise KieResponseError("callback body is empty")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise KieResponseError("callback body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise KieResponseError(f"callback body is a JSON {type(doc).__name__}, not an object")
    return doc


def callback_code(doc: dict) -> int:
    code = doc.get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int):
        raise KieResponseError(f"callback has no integer code (got {code!r})")
    return code


def task_id_of(value: Any) -> str | None:
    return _task_id(value)


def _task_id(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    return None


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def sign_webhook(key: str | bytes, task_id: str, timestamp: int | str) -> str:
    """KIE's scheme: base64(HMAC-SHA256(key, f"{task_id}.{timestamp}"))."""
    message = f"{task_id}.{timestamp}".encode("utf-8")
    digest = hmac.new(_key_bytes(key), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_webhook_signature(
    key: str | bytes,
    task_id: str,
    timestamp_header: str | None,
    signature_header: str | None,
    *,
    now: float | None = None,
    tolerance_s: float = 300,
) -> bool:
    """True only for a well-formed, fresh (±tolerance_s) and matching signature.

    Anything malformed is simply False: the headers come from whoever sent the request.
    """
    if not key or not task_id or not isinstance(task_id, str):
        return False
    if not isinstance(timestamp_header, str) or not isinstance(signature_header, str):
        return False
    stamp = timestamp_header.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    given = signature_header.strip()
    if not given.isascii():
        return False
    try:
        given_raw = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        return False
    expected_raw = base64.b64decode(sign_webhook(key, task_id, stamp))
    return hmac.compare_digest(given_raw, expected_raw)


def make_callback_token(secret: str | bytes, generation_id: int | str) -> str:
    """Token for `/kie/callback/<generation_id>?token=…` (urlsafe base64, no padding, 32 chars)."""
    if not secret:
        raise ValueError("callback token secret must not be empty")
    message = f"kie-callback:{generation_id}".encode("utf-8")
    digest = hmac.new(_key_bytes(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")[:_TOKEN_LEN]


def check_callback_token(secret: str | bytes, generation_id: int | str, token: str | None) -> bool:
    if not secret or not isinstance(token, str) or not token.isascii():
        return False
    expected = make_callback_token(secret, generation_id)
    return hmac.compare_digest(expected.encode("ascii"), token.encode("ascii"))
