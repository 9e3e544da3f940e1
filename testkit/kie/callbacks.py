"""Completion callbacks: KIE's body shape, optional HMAC headers, retries, and the fault knobs
(drop / duplicate / delay). Every attempt is logged for test assertions."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp


def sign(key: str, task_id: str, timestamp: int | str) -> str:
    """KIE's webhook signature: base64(HMAC-SHA256(key, f"{task_id}.{timestamp}")) (kie-api.md §3.3)."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def veo_callback_body(record: dict[str, Any]) -> dict[str, Any]:
    """Veo's callback (the Generate Veo3.1 page's `onVideoGenerated`): code 200 with
    data.info.resultUrls, or an error code with the reason in msg."""
    data: dict[str, Any] = {"taskId": record["taskId"], "fallbackFlag": False}
    if record["successFlag"] == 1:
        response = record["response"] or {}
        data["info"] = {"resultUrls": response.get("resultUrls", []),
                        "originUrls": response.get("originUrls", []),
                        "resolution": response.get("resolution")}
        return {"code": 200, "msg": "Veo3.1 video generated successfully.", "data": data}
    code = record.get("errorCode")
    code = code if code in (400, 422, 500, 501) else 501
    return {"code": code, "msg": record.get("errorMessage") or "Video generation task failed",
            "data": data}


def callback_body(record: dict[str, Any]) -> dict[str, Any]:
    if "successFlag" in record:
        return veo_callback_body(record)
    if record["state"] == "success":
        return {"code": 200, "msg": "Playground task completed successfully.", "data": record}
    return {"code": 501, "msg": "Playground task failed.", "data": {**record, "resultJson": None}}


@dataclass
class CallbackRetry:
    """When a failed callback is tried again: `retries` more times, the first after `backoff`
    seconds, each wait twice the one before but at most `max_backoff`. A callback keeps the
    schedule in force when it was sent, so a test may change `emulator.callback_retry` between
    steps (e.g. retries long enough to outlast a bot's restart)."""

    retries: int = 3
    backoff: float = 0.05
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("retries, backoff and max_backoff must be ≥ 0")

    def waits(self) -> list[float]:
        """The pause before each retry, in order."""
        return [min(self.max_backoff, self.backoff * 2**n) for n in range(self.retries)]


@dataclass
class CallbackAttempt:
    task_id: str
    url: str
    copy: int
    attempt: int
    status: int | None
    error: str | None = None
    dropped: bool = False


class CallbackSender:
    def __init__(
        self,
        *,
        hmac_key: str | None,
        timeout: float,
        retry: CallbackRetry,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._hmac_key = hmac_key
        self._timeout = timeout
        self.retry = retry
        self._wall_clock = wall_clock
        self._session: aiohttp.ClientSession | None = None
        self.log: list[CallbackAttempt] = []

    def __repr__(self) -> str:  # the HMAC key never appears
        return f"CallbackSender(signed={self._hmac_key is not None}, retry={self.retry})"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def record_drop(self, task_id: str, url: str) -> None:
        self.log.append(CallbackAttempt(task_id, url, 0, 0, None, "dropped by fault", dropped=True))

    async def send(self, task_id: str, url: str, record: dict[str, Any], *, copies: int, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        body = json.dumps(callback_body(record)).encode()
        waits = self.retry.waits()  # the schedule in force now, whatever a test sets meanwhile
        await asyncio.gather(*(self._deliver(task_id, url, body, copy, waits)
                               for copy in range(max(copies, 1))))

    async def _deliver(self, task_id: str, url: str, body: bytes, copy: int, waits: list[float]) -> None:
        assert self._session is not None, "CallbackSender.start() was not called"
        for attempt in range(1 + len(waits)):
            if attempt:
                await asyncio.sleep(waits[attempt - 1])
            headers = {"Content-Type": "application/json"}
            if self._hmac_key is not None:
                timestamp = str(int(self._wall_clock()))
                headers["X-Webhook-Timestamp"] = timestamp
                headers["X-Webhook-Signature"] = sign(self._hmac_key, task_id, timestamp)
            try:
                async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                    await resp.read()
                    self.log.append(CallbackAttempt(task_id, url, copy, attempt + 1, resp.status))
                    if 200 <= resp.status < 300:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.log.append(CallbackAttempt(task_id, url, copy, attempt + 1, None, type(exc).__name__))
