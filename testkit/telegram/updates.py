"""The update queue: long polling (getUpdates) and webhook delivery with retries."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import aiohttp

from .errors import ApiError
from .faults import Faults
from .spec import Upload
from .state import Notifier

log = logging.getLogger(__name__)

LONG_POLL_MAX_TIMEOUT = 50
DEFAULT_EXCLUDED = {"chat_member", "message_reaction", "message_reaction_count"}
WEBHOOK_CONFLICT = ApiError(
    409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
TERMINATED = ApiError(
    409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)


def update_type(update: dict[str, Any]) -> str:
    return next((k for k in update if k != "update_id"), "")


def queue_key(update: dict[str, Any]) -> tuple[str, int]:
    """The official server's webhook queues: per chat for messages, per user for queries."""
    kind = update_type(update)
    body = update.get(kind) or {}
    if "chat" in body:
        return "chat", body["chat"]["id"]
    if "from" in body:
        return kind, body["from"]["id"]
    return kind, 0


@dataclass
class Delivery:
    """One webhook POST attempt."""

    update_id: int
    status: int | None
    error: str | None
    at: float
    dropped: bool = False


@dataclass
class Webhook:
    url: str = ""
    secret_token: str | None = field(default=None, repr=False)
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None

    def info(self, pending: int, allowed: list[str] | None) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.url, "has_custom_certificate": False, "pending_update_count": pending}
        if self.url:
            info["max_connections"] = self.max_connections
            if allowed is not None:
                info["allowed_updates"] = allowed
        if self.last_error_date:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        return info


@dataclass
class UpdateQueue:
    notifier: Notifier
    faults: Faults
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    backoff: tuple[float, float] = (1.0, 60.0)
    pending: list[dict[str, Any]] = field(default_factory=list)
    allowed: list[str] | None = None
    webhook: Webhook = field(default_factory=Webhook)
    deliveries: list[Delivery] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    on_reply: Callable[[str, dict[str, Any], dict[str, Upload]], Awaitable[None]] | None = None
    _next_id: int = 100000001
    polls: int = 0  # getUpdates requests received so far
    last_timeout: int | None = None  # the effective (clamped) timeout of the latest getUpdates
    _drop_first: set[int] = field(default_factory=set)
    _retry_hints: dict[int, int] = field(default_factory=dict)  # Retry-After sent by the webhook
    _worker: asyncio.Task[None] | None = None
    _http: aiohttp.ClientSession | None = None
    _closed: bool = False

    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_id, **body}
        self._next_id += 1
        self.pending.append(update)
        if self.faults.take_duplicate():
            self.pending.append(update)
        if self.faults.take_drop():
            self._drop_first.add(update["update_id"])
        self.notifier.notify()
        return update

    def _wanted(self, update: dict[str, Any]) -> bool:
        kind = update_type(update)
        if not self.allowed:
            return kind not in DEFAULT_EXCLUDED
        return kind in self.allowed

    def _ready(self) -> list[dict[str, Any]]:
        # Updates the bot does not want are dropped, as the official server does.
        self.pending[:] = [u for u in self.pending if self._wanted(u)]
        return self.pending

    # --- long polling -------------------------------------------------------------------------
    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.url:
            raise WEBHOOK_CONFLICT
        self.polls += 1
        generation = self.polls
        self.notifier.notify()  # wakes an earlier getUpdates, which then ends with 409
        if "allowed_updates" in params:
            self.allowed = list(params["allowed_updates"])
        offset = params.get("offset")
        if offset is not None:
            if offset < 0:
                self.pending[:] = self.pending[offset:]
            else:
                self.pending[:] = [u for u in self.pending if u["update_id"] >= offset]
        limit = min(max(int(params.get("limit", 100)), 1), 100)
        timeout = min(max(int(params.get("timeout", 0)), 0), LONG_POLL_MAX_TIMEOUT)
        self.last_timeout = timeout

        def check() -> list[dict[str, Any]] | bool | None:
            if self._closed:
                return [{}]
            if generation != self.polls or self.webhook.url:
                return True
            return self._ready()[:limit] or None

        try:
            result = await self.notifier.wait_for(check, timeout, "updates")
        except asyncio.TimeoutError:
            return []
        if result is True:
            raise TERMINATED
        if self._closed:
            return []
        return list(result)  # type: ignore[arg-type]

    # --- webhook ------------------------------------------------------------------------------
    def set_webhook(self, params: dict[str, Any]) -> str:
        url = params["url"]
        if params.get("drop_pending_updates"):
            self.pending.clear()
        if "allowed_updates" in params:
            self.allowed = list(params["allowed_updates"])
        if not url:
            return self.delete_webhook({})
        same = (url, params.get("secret_token")) == (self.webhook.url, self.webhook.secret_token)
        self.webhook = Webhook(url=url, secret_token=params.get("secret_token"),
                               max_connections=params.get("max_connections", 40))
        self._ensure_worker()
        self.notifier.notify()
        return "Webhook is already set" if same else "Webhook was set"

    def delete_webhook(self, params: dict[str, Any]) -> str:
        if params.get("drop_pending_updates"):
            self.pending.clear()
        was = bool(self.webhook.url)
        self.webhook = Webhook()
        self.notifier.notify()
        return "Webhook was deleted" if was else "Webhook is already deleted"

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._deliver_loop(), name="fake-telegram-webhook")

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
            self._worker = None
        self._closed = True  # ends open long polls at once, so stopping does not wait for them
        self.notifier.notify()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _deliver_loop(self) -> None:
        try:
            await self._deliver_forever()
        except Exception:  # a bug here must be visible, not a silently dead webhook
            log.exception("webhook delivery loop failed")
            raise

    async def _deliver_forever(self) -> None:
        """Like the official server: one queue per chat (per user for queries); only each queue's
        head is in flight, queues go out in parallel up to max_connections."""
        in_flight: dict[tuple[str, int], asyncio.Task[None]] = {}
        try:
            while True:
                def next_head() -> dict[str, Any] | bool | None:
                    if self._closed or not self.webhook.url:
                        return True
                    if len(in_flight) >= self.webhook.max_connections:
                        return None
                    seen: set[tuple[str, int]] = set()
                    for update in self._ready():
                        key = queue_key(update)
                        if key not in seen and key not in in_flight:
                            return update
                        seen.add(key)
                    return None

                head = await self.notifier.wait_for(next_head, 3600, "webhook updates")
                if head is True:
                    return
                key = queue_key(head)  # type: ignore[arg-type]
                task = asyncio.create_task(self._deliver_until_done(head))  # type: ignore[arg-type]
                in_flight[key] = task
                task.add_done_callback(lambda _t, k=key: (in_flight.pop(k, None), self.notifier.notify()))
        finally:
            for task in list(in_flight.values()):
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)

    async def _deliver_until_done(self, update: dict[str, Any]) -> None:
        attempt = 0
        while self.webhook.url and not self._closed:
            if await self._deliver(update):
                for i, pending in enumerate(self.pending):
                    if pending is update:
                        del self.pending[i]
                        break
                self.delivered.append(update)
                return
            base, cap = self.backoff
            hint = self._retry_hints.pop(update["update_id"], None)
            await self.sleep(hint if hint is not None else min(cap, base * (2 ** attempt)))
            attempt += 1

    async def _deliver(self, update: dict[str, Any]) -> bool:
        uid = update["update_id"]
        if uid in self._drop_first:
            self._drop_first.discard(uid)
            self._fail(uid, None, "Connection dropped (fault)", dropped=True)
            return False
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if self.webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook.secret_token
        try:
            async with self._http.post(self.webhook.url, data=json.dumps(update), headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=60)) as resp:
                body = await resp.read()
                if not 200 <= resp.status < 300:
                    self._fail(uid, resp.status, f"Wrong response from the webhook: {resp.status} {resp.reason}")
                    hint = resp.headers.get("Retry-After", "")
                    if hint.isdigit():
                        self._retry_hints[uid] = min(int(hint), 3600)  # the official server's clamp
                    return False
                self.deliveries.append(Delivery(uid, resp.status, None, time.monotonic()))
                await self._reply_method(resp.headers.get("Content-Type", ""), body)
                return True
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self._fail(uid, None, f"Connection error: {type(exc).__name__}")
            return False

    def _fail(self, uid: int, status: int | None, message: str, dropped: bool = False) -> None:
        self.deliveries.append(Delivery(uid, status, message, time.monotonic(), dropped))
        self.webhook.last_error_date = int(self.wall())
        self.webhook.last_error_message = message
        self.notifier.notify()

    async def _reply_method(self, content_type: str, body: bytes) -> None:
        """A webhook reply may carry one method call: a JSON, urlencoded or multipart body with a
        "method" field (aiogram sends multipart when handle_in_background=False)."""
        if self.on_reply is None or not body:
            return
        params, files = parse_reply_body(content_type, body)
        method = params.pop("method", None)
        if isinstance(method, str):
            await self.on_reply(method, params, files)


def parse_reply_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Fields and file parts of a webhook reply; empty when it carries nothing we understand."""
    mime = content_type.split(";", 1)[0].strip().lower()
    try:
        if mime == "application/json":
            data = json.loads(body)
            return (data, {}) if isinstance(data, dict) else ({}, {})
        if mime == "application/x-www-form-urlencoded":
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)), {}
        if mime == "multipart/form-data":
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
            params: dict[str, Any] = {}
            files: dict[str, Upload] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    files[str(name)] = Upload(part.get_filename(), part.get_content_type(), payload)
                else:
                    params[str(name)] = payload.decode("utf-8", errors="replace")
            return params, files
    except (ValueError, UnicodeDecodeError):
        pass
    return {}, {}
