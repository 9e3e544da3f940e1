"""The embedded aiohttp server: Telegram webhook, KIE callback, local media, health (/healthz
liveness, /readyz readiness: bot/health.py), metrics.

The KIE callback handler only authenticates, persists the wake-up and answers; the work (confirm
with recordInfo, download, store, deliver) runs in the job runner's tracked background passes,
so KIE gets its 200 in milliseconds and a repeated callback costs one cheap write.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from kie_client.callbacks import check_callback_token, verify_webhook_signature
from kie_client.errors import KieResponseError
from kie_client.providers import UnknownProviderError
from storage.media import LocalMediaStore, UnsafePathError

from bot.health import Check, Readiness
from bot.logging import kv
from bot.loop_share import LoopShare
from bot.services.pipeline.complete import CallbackOutcome

if TYPE_CHECKING:
    from storage.repository import Repository

    from bot.services.generation import GenerationService

log = logging.getLogger("bot.server")

CALLBACK_MAX_BYTES = 256 * 1024
WEBHOOK_PATH = "/tg/webhook"
OK_BODY = {"code": 200, "msg": "success"}
OK_BYTES = json.dumps(OK_BODY).encode()  # encoded once: every accepted callback answers it


def webhook_secret(bot_token: str, callback_secret: str) -> str:
    """Stable X-Telegram-Bot-Api-Secret-Token ([A-Za-z0-9_-], 43 chars) derived from our secrets,
    so every process behind one URL agrees without another setting."""
    digest = hmac.new(callback_secret.encode(), b"telegram-webhook:" + bot_token.encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "msg": message}, status=status)


class CallbackView:
    def __init__(self, generations: GenerationService, *, callback_secret: str,
                 hmac_key: str | None, max_bytes: int = CALLBACK_MAX_BYTES,
                 share: LoopShare | None = None) -> None:
        self.generations = generations
        self._secret = callback_secret
        self._hmac_key = hmac_key
        self._max_bytes = max_bytes
        self._share = share or LoopShare()

    async def handle(self, request: web.Request) -> web.Response:
        # While KIE waits on this answer, background work pauses (bot/loop_share.py).
        with self._share.acknowledging(hold=True):
            return await self._answer(request)

    async def _answer(self, request: web.Request) -> web.Response:
        raw_id = request.match_info.get("generation_id", "")
        # isascii: str.isdigit() also accepts "²" and other Unicode digits int() refuses.
        if not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 18:
            return _json_error(404, "unknown generation")
        generation_id = int(raw_id)
        if not check_callback_token(self._secret, generation_id, request.query.get("token")):
            log.warning(kv("callback rejected: bad token", generation=generation_id))
            return _json_error(401, "unauthorized")
        if request.content_length is not None and request.content_length > self._max_bytes:
            return _json_error(413, "body too large")
        body = await _read_body(request, self._max_bytes)
        if body is None:
            return _json_error(413, "body too large")
        try:
            # The body's shape is the generation's provider's (the URL names it: ?api=veo).
            payload = self.generations.parse_callback(request.query.get("api"), body)
        except (KieResponseError, UnknownProviderError):
            log.warning(kv("callback rejected: malformed body", generation=generation_id))
            return _json_error(400, "malformed callback")
        if self._hmac_key and not verify_webhook_signature(
            self._hmac_key, payload.task_id, request.headers.get("X-Webhook-Timestamp"),
            request.headers.get("X-Webhook-Signature"),
        ):
            log.warning(kv("callback rejected: bad signature", generation=generation_id))
            return _json_error(401, "unauthorized")
        try:
            outcome = await self.generations.accept_callback(generation_id, payload)
        except Exception:
            # Our own trouble (database down): 503 makes KIE try again later.
            log.exception(kv("callback not persisted", generation=generation_id))
            return _json_error(503, "try again later")
        if outcome is CallbackOutcome.unknown_generation:
            return _json_error(404, "unknown generation")
        if outcome is CallbackOutcome.task_mismatch:
            return _json_error(409, "task does not belong to this generation")
        return web.Response(body=OK_BYTES, content_type="application/json")


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, however many TCP segments it came in; None once it passes `limit`.
    (StreamReader.read(n) returns only what is buffered so far, which cut long callbacks.)"""
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# -- health ------------------------------------------------------------------------------------


def database_readiness(repository: Repository) -> Readiness:
    """Readiness with the database alone (and its queue figures)."""
    return Readiness([Check("database", database_probe(repository))])


def database_probe(repository: Repository):
    async def probe() -> dict:
        depths = await repository.queue_depths()
        # Telegram updates stored and not yet handled: a growing number means the drainers
        # fall behind (or none runs).
        inbox = await repository.inbox_unhandled()
        return {"queues": {str(k): v for k, v in depths.items()}, "inbox_unhandled": inbox}

    return probe


def add_health_routes(app: web.Application, readiness: Readiness) -> None:
    """`/healthz`: liveness — the process is up and its loop answers (no dependency is asked, so
    a database outage never gets the process restarted). `/readyz`: readiness — 200 with every
    part "ok", or 503 naming each failing part; what a load balancer or supervisor should route
    and alert on."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(request: web.Request) -> web.Response:
        ok, checks, details = await readiness.run()
        body: dict = {"ok": ok, "checks": checks, **details}
        if not ok:
            body["failing"] = [name for name, status in checks.items() if status != "ok"]
        return web.json_response(body, status=200 if ok else 503,
                                 headers={"Cache-Control": "no-store"})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


def build_web_app(
    *,
    generations: GenerationService,
    repository: Repository,
    callback_secret: str,
    hmac_key: str | None,
    media: object | None,
    webhook: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
    health_only: bool = False,
    metrics: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
    readiness: Readiness | None = None,
    share: LoopShare | None = None,
) -> web.Application:
    """The routes. `webhook` is Telegram's intake (bot/inbox.py: webhook_handler); a worker
    process (`health_only`) serves /healthz and /readyz alone, and /metrics (bot/metrics.py:
    metrics_handler) when given, as every role does. `readiness`: the parts /readyz checks
    (kiebot/app.py: database, Redis, media store, KIE); the database alone without it.
    `share`: the process's LoopShare, which the callback handler tells while it answers."""
    app = web.Application(client_max_size=CALLBACK_MAX_BYTES * 4)
    if not health_only:
        view = CallbackView(generations, callback_secret=callback_secret, hmac_key=hmac_key,
                            share=share)
        app.router.add_post("/kie/callback/{generation_id}", view.handle)

    add_health_routes(app, readiness or database_readiness(repository))
    if metrics is not None:
        app.router.add_get("/metrics", metrics)

    if isinstance(media, LocalMediaStore) and not health_only:
        store = media

        async def serve_media(request: web.Request) -> web.StreamResponse:
            try:
                path = store.file_path(request.match_info["path"])
                if not path.is_file():
                    raise web.HTTPNotFound()
            except (UnsafePathError, OSError):  # OSError: e.g. a name too long for the disk
                raise web.HTTPNotFound() from None
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return web.FileResponse(path, headers={
                "Content-Type": ctype, "X-Content-Type-Options": "nosniff",
                "Cache-Control": "public, max-age=86400",
            })

        app.router.add_get("/media/{path:.+}", serve_media)

    if webhook is not None and not health_only:
        # Not aiogram's SimpleRequestHandler: it answers 200 before the update is stored or
        # handled, so a crash right after loses it. Ours answers once the update is durable.
        app.router.add_post(WEBHOOK_PATH, webhook)
    return app
