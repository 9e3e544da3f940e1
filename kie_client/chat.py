"""KIE's OpenAI-compatible chat completions (kie-market-2026.md shape C), on the same key.

`POST <market host>/<model>/v1/chat/completions` with `{"messages": [...], "stream": false}`
(the model is in the path, e.g. `gemini-3-flash`) answers OpenAI's shape:
`{"choices": [{"message": {"role": "assistant", "content": "..."}, "finish_reason": "stop"}],
"usage": {...}}`. Failures come back either KIE's way (`{"code": 401, "msg": ...}`, HTTP 200 or
not) or OpenAI's (`{"error": {"message": ...}}` with an HTTP status); both become the error
classes of errors.py through `error_for`.

`ChatClient` rides on a `KieClient`: its HTTP client (Bearer key, sanitised error responses,
body cap, `on_response` hook; endpoint label "completions"). It has its own `RetryPolicy`
(data: by default two attempts, a short backoff) and its own per-request timeout, because a
chat answer is something a person in the chat is waiting for — a slow one is better given up
than retried for a minute. A completion is not billed work that a retry could double in any way
that matters (a few tokens), so connection failures and timeouts are retried like reads.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .client import KieClient, retry_delay
from .errors import KieError, KieResponseError, error_for
from .retry import RetryPolicy, parse_retry_after

__all__ = ["ChatClient", "ChatCompletion", "CHAT_RETRY", "chat_path"]

log = logging.getLogger("kie_client")

CHAT_RETRY = RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=2.0, max_retry_after=5.0)
ROLES = ("system", "user", "assistant")


def chat_path(model: str) -> str:
    return f"/{model}/v1/chat/completions"


@dataclass(frozen=True)
class ChatCompletion:
    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatClient:
    def __init__(self, kie: KieClient, *, retry: RetryPolicy | None = None,
                 timeout: float = 20.0) -> None:
        self.kie = kie
        self.retry = retry or CHAT_RETRY
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ChatClient({self.kie!r}, timeout={self.timeout!r})"

    async def complete(self, model: str, messages: list[dict[str, Any]], *,
                       max_tokens: int | None = None,
                       temperature: float | None = None) -> ChatCompletion:
        """One non-streaming completion; raises a KieError subclass on every failure."""
        if not isinstance(model, str) or not model.strip() or "/" in model.strip("/"):
            raise ValueError("complete needs a chat model id such as 'gemini-3-flash'")
        _check_messages(messages)
        body: dict[str, Any] = {"messages": messages, "stream": False}
        if max_tokens is not None:
            body["max_tokens"] = int(max_tokens)
        if temperature is not None:
            body["temperature"] = float(temperature)
        url = self.kie.market_base_url + chat_path(model.strip().strip("/"))
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(url, body, attempt)
            except KieError as err:
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise
            if delay > 0:
                await self.kie._sleep(delay)

    def _retry_delay(self, err: KieError, attempt: int) -> float | None:
        return retry_delay(self.retry, err, attempt)  # the KIE client's rule for reads

    async def _attempt(self, url: str, body: dict[str, Any], attempt: int) -> ChatCompletion:
        kie = self.kie
        started = time.perf_counter()
        status: int | str = "-"
        body_code: int | None = None
        try:
            failure: KieError | None = None  # raised outside except: httpx errors hold the key
            try:
                req = kie._http.build_request("POST", url, json=body, timeout=self.timeout)
                resp = await kie._http.send(req, stream=True)
                status = resp.status_code
                try:
                    content = await kie._read_capped(resp)
                finally:
                    await resp.aclose()
            except httpx.TransportError as exc:
                status = type(exc).__name__
                failure = kie._transport_error(exc)
            except httpx.DecodingError:
                failure = KieResponseError(f"KIE chat body could not be decoded (HTTP {status})")
            if failure is not None:
                raise failure
            try:
                result = self._decode(resp, content)
                body_code = 200
                return result
            except KieError as err:
                body_code = err.body_code if isinstance(err.body_code, int) else None
                raise
        finally:
            elapsed = time.perf_counter() - started
            log.info("kie POST %s -> %s in %.0f ms (attempt %d)",
                     httpx.URL(url).path, status, elapsed * 1000, attempt)
            if kie._on_response is not None:
                kie._report(url, status, body_code, elapsed)

    def _decode(self, resp: httpx.Response, content: bytes) -> ChatCompletion:
        kie = self.kie
        status = resp.status_code
        safe = kie._safe_response(resp, content)
        retry_after = parse_retry_after(resp.headers.get("retry-after"))
        try:
            data = json.loads(content) if content else None
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            if status >= 400:
                raise error_for(status, None, "non-JSON error body", safe, retry_after=retry_after)
            raise KieResponseError(f"KIE chat answered HTTP {status} without a JSON object",
                                   status_code=status, response=safe)
        code = data.get("code")
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code)
        if isinstance(code, bool) or not isinstance(code, int):
            code = None
        error = data.get("error")
        message = data.get("msg") or data.get("message") or ""
        if isinstance(error, dict):
            message = message or error.get("message") or ""
        elif isinstance(error, str):
            message = message or error
        message = kie._scrub(str(message))
        if status >= 400 or (code is not None and code != 200) or error:
            raise error_for(status, code, message, safe, retry_after=retry_after)
        choices = data.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        msg = first.get("message") if isinstance(first, dict) else None
        text = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(text, list):  # content parts: [{"type": "text", "text": ...}]
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        if not isinstance(text, str) or not text.strip():
            raise KieResponseError("KIE chat answered without any message content",
                                   status_code=status, response=safe)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return ChatCompletion(
            text=text.strip(), finish_reason=first.get("finish_reason"),
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(
                m.get("content"), str) or not m["content"].strip():
            raise ValueError("each message needs a role (system, user, assistant) and text content")
