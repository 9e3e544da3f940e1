"""Market host routes: createTask, recordInfo, download-url, credit."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from kie_client.catalog import (
    CatalogError,
    MissingFieldError,
    UnknownModelError,
    spec_for_kie_model,
    validate_input,
)
from .tasks import number

if TYPE_CHECKING:
    from .server import KieEmulator

_UNAUTHORIZED = "You do not have access permissions"
_NO_CREDITS = (
    "Credits insufficient : Your current balance isn't enough to run this request. Please top up to continue."
)


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return _BAD


_BAD = object()


def market_routes(emu: KieEmulator) -> list[web.RouteDef]:
    async def create_task(request: web.Request) -> web.Response:
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        body = await _json(request)
        if body is _BAD or not isinstance(body, dict):
            return emu.reply(400, "Request body must be a JSON object")
        if emu.faults.create_errors > 0:
            emu.faults.create_errors -= 1
            code = emu.faults.create_error_code
            return emu.reply(code, "Rate limit exceeded" if code == 429 else "Internal server error")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return emu.reply(422, "model is required")
        callback = body.get("callBackUrl")
        if callback is not None and (not isinstance(callback, str) or not callback.startswith(("http://", "https://"))):
            return emu.reply(422, "callBackUrl must be an http(s) URL")
        if "input" not in body:
            return emu.reply(emu.missing_field_code, "input is required")
        try:
            if spec_for_kie_model(model).api != "market":  # Veo & co. have their own routes
                raise UnknownModelError(model)
            validate_input(model, body["input"])
        except UnknownModelError:
            return emu.reply(422, f"The model {model} is not supported")
        except MissingFieldError as exc:
            return emu.reply(emu.missing_field_code, exc.message)
        except CatalogError as exc:
            return emu.reply(422, exc.message)
        if not emu.allow_create():
            return emu.reply(429, "Rate limit exceeded")
        if emu.credits < emu.price_of(model, body["input"]):
            return emu.reply(402, _NO_CREDITS)
        task = emu.create_task(model, dict(body["input"]), callback)
        if emu.faults.hang_creates > 0:
            emu.faults.hang_creates -= 1
            await emu.hang(emu.faults.hang_seconds)
        return emu.reply(200, "success", {"taskId": task.task_id, "recordId": task.task_id})

    async def record_info(request: web.Request) -> web.Response:
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        if not emu.allow_record():
            return emu.reply(429, "Rate limit exceeded")
        task_id = request.query.get("taskId", "").strip()
        if not task_id:
            return emu.reply(400, "taskId parameter is required")
        task = emu.tasks.get(task_id)
        if task is None:
            return emu.reply(422, "recordInfo is null", None)
        return emu.reply(200, "success", emu.visible_record(task))

    async def download_url(request: web.Request) -> web.Response:
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        body = await _json(request)
        if body is _BAD or not isinstance(body, dict):
            return emu.reply(400, "Request body must be a JSON object")
        url = body.get("url")
        if not isinstance(url, str) or not url:
            return emu.reply(422, "url is required")
        found = _result_of(emu, url)
        if found is None:
            return emu.reply(422, "Invalid URL")
        task_id, name = found
        token = secrets.token_urlsafe(16)
        emu.download_links[token] = (task_id, name, emu.clock() + emu.download_ttl)
        return emu.reply(200, "success", f"{emu.files_url}/d/{token}/{task_id}/{name}")

    async def credit(request: web.Request) -> web.Response:
        if not emu.authorized(request):
            return emu.reply(401, _UNAUTHORIZED)
        return emu.reply(200, "success", number(emu.credits))

    return [
        web.post("/api/v1/jobs/createTask", create_task),
        web.get("/api/v1/jobs/recordInfo", record_info),
        web.post("/api/v1/common/download-url", download_url),
        web.get("/api/v1/chat/credit", credit),
    ]


def _result_of(emu: KieEmulator, url: str) -> tuple[str, str] | None:
    """(task_id, file name) when `url` is one of our result or fresh-download links."""
    parts = urlsplit(url)
    hosts = {urlsplit(emu.base_url).netloc}
    if emu.faults.foreign_result_base:
        hosts.add(urlsplit(emu.faults.foreign_result_base).netloc)
    for task in emu.tasks.values():
        hosts.add(urlsplit(task.result_base).netloc)
    if parts.scheme not in ("http", "https") or parts.netloc not in hosts:
        return None
    segments = parts.path.strip("/").split("/")
    if len(segments) == 4 and segments[:2] == ["files", "r"]:
        task_id, name = segments[2], segments[3]
    elif len(segments) == 5 and segments[:2] == ["files", "d"]:
        task_id, name = segments[3], segments[4]
    else:
        return None
    task = emu.tasks.get(task_id)
    if task is None or task.file(name) is None:
        return None
    return task_id, name
