"""A small HTTP control API under /_fake/ for driving the fake from another process.

    POST /_fake/users/{id}            {"first_name": "Ann", "language_code": "en", "username": null}
    POST /_fake/users/{id}/text       {"text": "hello"}
    POST /_fake/users/{id}/command    {"command": "/start", "args": "promo42"}
    POST /_fake/users/{id}/photo      {"data_b64": "...", "caption": "..."}
    POST /_fake/users/{id}/document   {"data_b64": "...", "file_name": "a.png", "mime_type": "image/png"}
    POST /_fake/users/{id}/tap        {"text": "Buy", "message_id": null, "timeout": 5}
    POST /_fake/users/{id}/pay        {"message_id": null, "link": null}
    POST /_fake/users/{id}/block      {}            (and /unblock)
    GET  /_fake/users/{id}/transcript [?format=text]
    GET  /_fake/calls                 (method, params without file bytes, status, response)
    GET  /_fake/flood                 (every 429 issued)
    POST /_fake/faults                {"flood_next": 3, "retry_after": 2} | {"server_error_next": 1} |
                                      {"delay": 0.5} | {"drop_deliveries": 1} | {"duplicate_next": 1} |
                                      {"clear": true}
    Crowds and counting (the benchmark's knobs, see crowd.py): /_fake/crowd/users, /_fake/crowd/run,
    /_fake/crowd/run/{id}, /_fake/stats, /_fake/flood_limits.
These routes need no token: bind the fake to loopback only.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .crowd import add_crowd_routes
from .errors import FakeUserError
from .spec import Upload

if TYPE_CHECKING:
    from .server import FakeTelegram


def add_control_routes(app: web.Application, fake: FakeTelegram) -> None:
    async def create_user(request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            user = fake.user(_uid(request), first_name=body.get("first_name", "Ann"),
                             language_code=body.get("language_code", "en"), username=body.get("username"),
                             last_name=body.get("last_name"))
        except ValueError as exc:
            return _fail(400, str(exc))
        return web.json_response({"id": user.id})

    async def act(request: web.Request) -> web.Response:
        uid = _uid(request)
        if uid not in fake.users:
            return _fail(404, f"unknown user {uid}; create it with POST /_fake/users/{uid}")
        user = fake.users[uid]
        body = await _json(request)
        action = request.match_info["action"]
        try:
            result = await _perform(user, action, body)
        except FakeUserError as exc:
            return _fail(400, str(exc))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            return _fail(400, f"bad request body for {action}: {exc!r}")
        return web.json_response({"ok": True, "result": _plain(result)})

    async def transcript(request: web.Request) -> web.Response:
        user = fake.users.get(_uid(request))
        if user is None:
            return _fail(404, "unknown user")
        if request.query.get("format") == "text":
            return web.Response(text=user.render())
        return web.json_response({"ok": True, "result": _plain(user.transcript)})

    async def calls(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": [
            {"method": c.method, "params": _plain(c.params), "status": c.status, "response": c.response}
            for c in fake.calls]})

    async def flood(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": [_plain(e) for e in fake.flood_events]})

    async def faults(request: web.Request) -> web.Response:
        body = await _json(request)
        f = fake.faults
        try:
            if body.get("clear"):
                f.clear()
            if "flood_next" in body:
                f.flood_next(int(body["flood_next"]), int(body.get("retry_after", 1)))
            if "flood_for" in body:
                f.flood_for(float(body["flood_for"]), int(body.get("retry_after", 1)))
            if "server_error_next" in body:
                f.server_error_next(int(body["server_error_next"]), int(body.get("status", 500)))
            if "delay" in body:
                f.delay(float(body["delay"]), set(body["methods"]) if body.get("methods") else None)
            if "drop_deliveries" in body:
                f.drop_deliveries(int(body["drop_deliveries"]))
            if "duplicate_next" in body:
                f.duplicate_next(int(body["duplicate_next"]))
        except (TypeError, ValueError) as exc:
            return _fail(400, str(exc))
        return web.json_response({"ok": True, "result": True})

    add_crowd_routes(app, fake)
    app.router.add_post("/_fake/users/{user_id}", create_user)
    app.router.add_post("/_fake/users/{user_id}/{action}", act)
    app.router.add_get("/_fake/users/{user_id}/transcript", transcript)
    app.router.add_get("/_fake/calls", calls)
    app.router.add_get("/_fake/flood", flood)
    app.router.add_post("/_fake/faults", faults)


async def _perform(user: Any, action: str, body: dict[str, Any]) -> Any:
    if action == "text":
        return await user.send_text(body["text"])
    if action == "command":
        return await user.send_command(body["command"], body.get("args"))
    if action == "photo":
        return await user.send_photo(base64.b64decode(body["data_b64"]), body.get("caption"))
    if action == "document":
        return await user.send_document(base64.b64decode(body["data_b64"]), body["file_name"],
                                        body.get("mime_type"), body.get("caption"))
    if action == "video":
        return await user.send_video(base64.b64decode(body["data_b64"]), caption=body.get("caption"))
    if action == "sticker":
        return await user.send_sticker()
    if action == "tap":
        return await user.tap(body["text"], body.get("message_id"), float(body.get("timeout", 5.0)))
    if action == "pay":
        return await user.pay(body.get("message_id"), link=body.get("link"))
    if action == "block":
        user.block()
        return True
    if action == "unblock":
        user.unblock()
        return True
    raise FakeUserError(f"unknown action {action!r}")


def _uid(request: web.Request) -> int:
    try:
        return int(request.match_info["user_id"])
    except ValueError:
        raise web.HTTPBadRequest(text="user id must be an integer") from None


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _fail(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "description": message}, status=status)


def _plain(value: Any) -> Any:
    """JSON-friendly copy: dataclasses to dicts, file bytes to their size."""
    if isinstance(value, Upload):
        return {"filename": value.filename, "content_type": value.content_type, "size": value.size}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name != "raw"}
    if isinstance(value, bytes):
        return {"size": len(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
