"""Async HTTP client for the KIE.ai market and upload APIs.

One `httpx.AsyncClient` for both hosts (market `api.kie.ai`, uploads `kieai.redpandaai.co`),
Bearer auth, bodies read with a size cap, every answer checked on both the HTTP status and the
body `code` (errors.error_for). Retries follow `RetryPolicy`; createTask has its own rule because
KIE bills every created task and has no idempotency key:

- retried only when the task certainly was not created: connect failure before sending
  (httpx.ConnectError / ConnectTimeout / PoolTimeout) and 429;
- after a read/write timeout, a connection dropped after sending, or a 5xx (HTTP or body code,
  except 501/505 which are definite answers) → `KieSubmissionUnknownError`, never a retry;
  so is an HTTP 200 whose body cannot be read (truncated, oversized, no taskId);
- every other answer (4xx incl. 455 maintenance, which refuses the request) is raised as is.
Other calls are idempotent and retry 429, 455, 5xx (not 501/505), connection errors and timeouts.

The API key is kept out of logs, reprs and errors: errors carry a sanitised response copy.

`on_response` (optional) is told about every HTTP attempt — `(endpoint, status, body_code,
seconds)` — so the application can keep metrics without this package knowing about them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import httpx

from .errors import (
    KieAPIStatusError,
    KieConnectionError,
    KieError,
    KieRateLimitError,
    KieResponseError,
    KieSubmissionUnknownError,
    KieTimeoutError,
    KieValidationError,
    error_for,
)
from .ratelimit import PausableLimiter, RateLimiter, SlidingWindowLimiter, settle
from .retry import RetryPolicy, parse_retry_after
from .types import TaskCreated, TaskRecord, UploadedFile

__all__ = ["KieClient", "MAX_JSON_BYTES", "ResponseHook"]

log = logging.getLogger("kie_client")

MAX_JSON_BYTES = 2 * 1024 * 1024
_PREVIEW = 120
_REDACTED = "Bearer [redacted]"

CallKind = Literal["create", "read", "upload"]
# on_response(endpoint, status, body_code, seconds), once per HTTP attempt (retries included):
# endpoint is the last segment of the fixed path ("createTask", "recordInfo", "file-url-upload"…);
# status the HTTP status, or the transport error's class name ("ConnectTimeout") when no answer
# came; body_code KIE's body `code` when the body had one (200 on success), else None.
ResponseHook = Callable[[str, "int | str", "int | None", float], None]
# Raised before any byte of the request left this process: the server cannot have acted on it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class KieClient:
    def __init__(
        self,
        api_key: str,
        *,
        market_base_url: str = "https://api.kie.ai",
        upload_base_url: str = "https://kieai.redpandaai.co",
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        create_limiter: RateLimiter | None = None,
        status_limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        max_body_bytes: int = MAX_JSON_BYTES,
        on_response: ResponseHook | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("KieClient needs a non-empty API key")
        self._api_key = api_key.strip()
        self.market_base_url = market_base_url.rstrip("/")
        self.upload_base_url = upload_base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.create_limiter = create_limiter or SlidingWindowLimiter(20, 10.0)
        self.status_limiter = status_limiter or SlidingWindowLimiter(10, 1.0)
        self._sleep = sleep
        self._max_body = max_body_bytes
        self._on_response = on_response
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return (
            f"KieClient(market_base_url={self.market_base_url!r}, "
            f"upload_base_url={self.upload_base_url!r}, api_key='[redacted]')"
        )

    async def __aenter__(self) -> KieClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ market endpoints

    async def create_task(
        self, model: str, input: dict[str, Any], callback_url: str | None = None
    ) -> TaskCreated:
        if not isinstance(model, str) or not model.strip():
            raise ValueError("create_task needs a model id")
        if not isinstance(input, dict):
            raise ValueError("create_task input must be a dict")
        body: dict[str, Any] = {"model": model, "input": input}
        if callback_url:
            body["callBackUrl"] = callback_url
        data = await self._call(
            "POST", self.market_base_url + "/api/v1/jobs/createTask",
            kind="create", limiter=self.create_limiter, json=body,
        )
        try:
            return TaskCreated.from_api(data)
        except KieResponseError as err:
            raise self._final_error(err, "create") from None

    async def get_task(self, task_id: str) -> TaskRecord:
        if not isinstance(task_id, str) or not task_id.strip():
            raise ValueError("get_task needs a task id")
        data = await self._call(
            "GET", self.market_base_url + "/api/v1/jobs/recordInfo",
            kind="read", limiter=self.status_limiter, params={"taskId": task_id.strip()},
        )
        if data is None:
            raise KieResponseError(f"recordInfo for {task_id} answered success without data")
        return TaskRecord.from_api(data)

    async def get_download_url(self, url: str) -> str:
        if not isinstance(url, str) or not url.strip():
            raise ValueError("get_download_url needs a URL")
        data = await self._call(
            "POST", self.market_base_url + "/api/v1/common/download-url",
            kind="read", json={"url": url},
        )
        if not isinstance(data, str) or not data.startswith(("http://", "https://")):
            raise KieResponseError("download-url answered success without a URL string")
        return data

    async def get_credits(self) -> Decimal:
        # parse_float=Decimal keeps a live balance such as 60.62 exact.
        data = await self._call(
            "GET", self.market_base_url + "/api/v1/chat/credit", kind="read", parse_float=Decimal,
        )
        if isinstance(data, bool) or not isinstance(data, (int, Decimal, str)):
            raise KieResponseError(f"credit answered a non-number ({type(data).__name__})")
        try:
            value = Decimal(str(data).strip())
        except InvalidOperation:
            raise KieResponseError("credit answered a non-number") from None
        if not value.is_finite():
            raise KieResponseError("credit answered a non-finite number")
        return value

    # ------------------------------------------------------------------ uploads

    async def upload_stream(
        self, data: bytes, *, upload_path: str, file_name: str | None = None,
        mime_type: str | None = None,
    ) -> UploadedFile:
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise ValueError("upload_stream needs non-empty bytes")
        form = {"uploadPath": _upload_path(upload_path)}
        if file_name:
            form["fileName"] = file_name
        name = file_name or "upload"
        files = {"file": (name, bytes(data), mime_type or "application/octet-stream")}
        result = await self._call(
            "POST", self.upload_base_url + "/api/file-stream-upload",
            kind="upload", data=form, files=files,
        )
        return UploadedFile.from_api(result)

    async def upload_base64(
        self, data: bytes | str, *, upload_path: str, file_name: str | None = None,
        mime_type: str | None = None,
    ) -> UploadedFile:
        if isinstance(data, (bytes, bytearray)):
            if not data:
                raise ValueError("upload_base64 needs non-empty data")
            encoded = base64.b64encode(bytes(data)).decode("ascii")
            payload = f"data:{mime_type};base64,{encoded}" if mime_type else encoded
        elif isinstance(data, str) and data.strip():
            payload = data.strip()  # already base64 or a data: URL; KIE accepts both
        else:
            raise ValueError("upload_base64 needs bytes or a non-empty base64 string")
        body = {"base64Data": payload, "uploadPath": _upload_path(upload_path)}
        if file_name:
            body["fileName"] = file_name
        result = await self._call(
            "POST", self.upload_base_url + "/api/file-base64-upload", kind="upload", json=body,
        )
        return UploadedFile.from_api(result)

    async def upload_url(
        self, file_url: str, *, upload_path: str, file_name: str | None = None
    ) -> UploadedFile:
        if not isinstance(file_url, str) or not file_url.startswith(("http://", "https://")):
            raise ValueError("upload_url needs an http(s) URL")
        body = {"fileUrl": file_url, "uploadPath": _upload_path(upload_path)}
        if file_name:
            body["fileName"] = file_name
        result = await self._call(
            "POST", self.upload_base_url + "/api/file-url-upload", kind="upload", json=body,
        )
        return UploadedFile.from_api(result)

    # ------------------------------------------------------------------ machinery

    async def _call(
        self, method: str, url: str, *, kind: CallKind, limiter: RateLimiter | None = None,
        parse_float: Callable[[str], Any] | None = None, **request: Any,
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            slot = await limiter.acquire() if limiter is not None else None
            try:
                return await self._attempt(method, url, kind, attempt, parse_float, request)
            except KieError as err:
                delay = self._retry_delay(err, kind, attempt)
                if isinstance(err, KieRateLimitError) and isinstance(limiter, PausableLimiter):
                    # KIE's window is fuller than ours: everyone sharing the limiter waits (the
                    # retry then queues for a slot like any other request), instead of each
                    # caller spending another slot on another 429.
                    pause = delay if delay is not None else self._rate_limit_pause(err, attempt)
                    await limiter.pause(pause)
                    delay = None if delay is None else 0.0
                if delay is None:
                    raise self._final_error(err, kind) from None
            finally:
                # Answered or failed, the request has reached KIE if it ever will: count its
                # slot from now (kie_client/ratelimit.py says why).
                await settle(limiter, slot)
            if delay <= 0:
                continue
            log.debug("kie %s %s retrying in %.2fs (attempt %d failed)",
                     method, _path(url), delay, attempt)
            await self._sleep(delay)

    def _rate_limit_pause(self, err: KieError, attempt: int) -> float:
        retry_after = getattr(err, "retry_after", None)
        if retry_after is None:
            return self.retry.backoff_delay(attempt)
        return min(float(retry_after), self.retry.max_retry_after)

    def _retry_delay(self, err: KieError, kind: CallKind, attempt: int) -> float | None:
        return retry_delay(self.retry, err, attempt, create=kind == "create")

    @staticmethod
    def _final_error(err: KieError, kind: CallKind) -> KieError:
        if kind != "create":
            return err
        # A 200 we could not read (truncated, huge, no taskId) may well have created a task.
        maybe_sent = (
            isinstance(err, KieConnectionError) and err.request_sent
        ) or isinstance(err, KieResponseError)
        server_fault = (
            isinstance(err, KieAPIStatusError)
            and not isinstance(err, KieValidationError)
            and (err.code or 0) >= 500
            and err.code not in (501, 505)
        )
        if maybe_sent or server_fault:
            return KieSubmissionUnknownError(
                f"createTask outcome unknown ({err.message}); a task may have been created",
                cause=err, status_code=err.status_code, body_code=err.body_code,
                response=err.response,
            )
        return err

    async def _attempt(
        self, method: str, url: str, kind: CallKind, attempt: int,
        parse_float: Callable[[str], Any] | None, request: dict[str, Any],
    ) -> Any:
        started = time.perf_counter()
        outcome = "-"
        status: int | str = "-"
        body_code: int | None = None
        try:
            # Errors are raised outside the except blocks: httpx exceptions carry the request
            # with its Authorization header, and `from None` would still keep them reachable
            # as __context__ for error reporters that walk the chain.
            failure: KieError | None = None
            try:
                req = self._http.build_request(method, url, **request)
                resp = await self._http.send(req, stream=True)
                status = resp.status_code
                outcome = str(resp.status_code)
                try:
                    content = await self._read_capped(resp)
                finally:
                    await resp.aclose()
            except httpx.TransportError as exc:
                outcome = status = type(exc).__name__
                failure = self._transport_error(exc)
            except httpx.DecodingError:
                failure = KieResponseError(
                    f"KIE response body could not be decoded (HTTP {outcome})"
                )
            if failure is not None:
                raise failure
            try:
                data = self._decode(resp, content, upload=(kind == "upload"),
                                    parse_float=parse_float)
                body_code = 200  # _decode returns only for a body that said code 200
                return data
            except KieError as err:
                body_code = err.body_code if isinstance(err.body_code, int) else None
                if err.body_code not in (None, 200):
                    outcome += f" code={err.body_code}"
                raise
        finally:
            elapsed = time.perf_counter() - started
            log.info("kie %s %s -> %s in %.0f ms (attempt %d)",
                     method, _path(url), outcome, elapsed * 1000, attempt)
            if self._on_response is not None:
                self._report(url, status, body_code, elapsed)

    def _report(self, url: str, status: int | str, body_code: int | None,
                seconds: float) -> None:
        try:
            self._on_response(_path(url).rsplit("/", 1)[-1], status, body_code, seconds)
        except Exception as exc:  # an observer must never break a call
            log.warning("kie on_response hook failed: %s", type(exc).__name__)

    async def _read_capped(self, resp: httpx.Response) -> bytes:
        def too_big() -> KieResponseError:
            return KieResponseError(
                f"KIE response body exceeds {self._max_body} bytes (HTTP {resp.status_code}); "
                "refusing to read it", status_code=resp.status_code,
                response=self._safe_response(resp, b""),
            )

        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise too_big()
        buf = bytearray()
        async for chunk in resp.aiter_bytes():
            buf += chunk
            if len(buf) > self._max_body:
                raise too_big()
        return bytes(buf)

    def _transport_error(self, exc: httpx.TransportError) -> KieConnectionError:
        sent = not isinstance(exc, _NOT_SENT)
        text = self._scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if isinstance(exc, httpx.TimeoutException):
            return KieTimeoutError(f"KIE request timed out ({text})", request_sent=sent)
        return KieConnectionError(f"KIE connection failed ({text})", request_sent=sent)

    def _decode(
        self, resp: httpx.Response, content: bytes, *, upload: bool,
        parse_float: Callable[[str], Any] | None,
    ) -> Any:
        status = resp.status_code
        safe = self._safe_response(resp, content)
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
        try:
            body = json.loads(content, parse_float=parse_float) if content else None
        except (ValueError, RecursionError):
            body = _NOT_JSON
        if not isinstance(body, dict):
            ctype = resp.headers.get("content-type", "no content type")
            if status >= 400:
                raise error_for(status, None, f"non-JSON error body ({ctype})", safe,
                                upload=upload, retry_after=retry_after)
            what = "a non-JSON body" if body is _NOT_JSON else f"a JSON {_kind(body)}, not an object"
            raise KieResponseError(
                f"KIE answered HTTP {status} with {what} ({ctype}): {self._preview(content)!r}",
                status_code=status, response=safe,
            )
        code = body.get("code")
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code)
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise KieResponseError(f"KIE body code is not an integer: {code!r}",
                                   status_code=status, response=safe)
        message = body.get("msg") or body.get("message") or ""
        message = self._scrub(str(message))
        failed_upload = upload and body.get("success") is False
        if status >= 400 or (code is not None and code != 200) or failed_upload:
            body_code = code if not (failed_upload and code in (None, 200)) else 400
            raise error_for(status, body_code, message, safe, upload=upload,
                            retry_after=retry_after)
        if code is None:
            raise KieResponseError(f"KIE answered HTTP {status} without a body code",
                                   status_code=status, response=safe)
        return body.get("data")

    def _safe_response(self, resp: httpx.Response, content: bytes) -> httpx.Response:
        """A detached copy that is safe to keep on an error: no key, no request body."""
        req = resp.request
        headers = [
            (k, _REDACTED if k.lower() == "authorization" else v)
            for k, v in req.headers.multi_items()
        ]
        safe_req = httpx.Request(req.method, req.url, headers=headers)
        resp_headers = [
            (k, v) for k, v in resp.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(resp.status_code, headers=resp_headers, content=content,
                              request=safe_req)

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key in text else text

    def _preview(self, content: bytes) -> str:
        return self._scrub(content[:_PREVIEW].decode("utf-8", "replace"))


_NOT_JSON = object()


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _path(url: str) -> str:
    return httpx.URL(url).path


def _upload_path(value: str) -> str:
    path = value.strip().strip("/") if isinstance(value, str) else ""
    if not path:
        raise ValueError("upload_path must be a non-empty folder path, e.g. 'images/user-uploads'")
    return path


def retry_delay(policy: RetryPolicy, err: KieError, attempt: int, *,
                create: bool = False) -> float | None:
    """How long to wait before trying again after `err` on attempt `attempt`, or None to give
    up: the policy's statuses for reads; for a create only what certainly never made a task (a
    connection that failed before the request was sent, or a 429)."""
    if attempt >= policy.max_attempts:
        return None
    retry_after = getattr(err, "retry_after", None)
    if create:
        ok = (isinstance(err, KieConnectionError) and not err.request_sent) or isinstance(
            err, KieRateLimitError
        )
    elif isinstance(err, KieConnectionError):
        ok = True
    elif isinstance(err, KieAPIStatusError) and not isinstance(err, KieValidationError):
        ok = err.code in policy.retry_statuses
    else:
        ok = False
    if not ok:
        return None
    if retry_after is not None and retry_after > policy.max_retry_after:
        return None
    return policy.backoff_delay(attempt, retry_after)
