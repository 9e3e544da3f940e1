"""Result files (original and fresh download links), uploaded files, and the control routes."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from aiohttp import web

from .media import make_png, padded_png
from .mp4 import make_mp4, padded_mp4
from .tasks import EmulatedTask, ResultFile, number

if TYPE_CHECKING:
    from .server import KieEmulator


def _content(task: EmulatedTask, f: ResultFile) -> bytes:
    cached = task._cache.get(f.name)
    if cached is None:
        if f.content_type == "image/png":
            cached = make_png(f.width, f.height, task.task_id)
        else:
            cached = make_mp4(f.width, f.height, f.duration_s, seed=int(task.task_id[:4], 16))
        task._cache[f.name] = cached
    return cached


async def _serve(request: web.Request, task: EmulatedTask, f: ResultFile) -> web.StreamResponse:
    if not task.large_result_bytes:
        return web.Response(body=_content(task, f), content_type=f.content_type)
    if f.content_type == "image/png":
        size, chunks = padded_png(f.width, f.height, task.task_id, task.large_result_bytes)
    else:
        size, chunks = padded_mp4(_content(task, f), task.large_result_bytes)
    resp = web.StreamResponse(headers={"Content-Type": f.content_type, "Content-Length": str(size)})
    await resp.prepare(request)
    for chunk in chunks:
        await resp.write(chunk)
    await resp.write_eof()
    return resp


def file_routes(emu: KieEmulator) -> list[web.RouteDef]:
    def lookup(task_id: str, name: str) -> tuple[EmulatedTask, ResultFile]:
        task = emu.tasks.get(task_id)
        f = task.file(name) if task is not None and task.state == "success" else None
        if task is None or f is None:
            raise web.HTTPNotFound(text="not found")
        return task, f

    async def original(request: web.Request) -> web.StreamResponse:
        task, f = lookup(request.match_info["task_id"], request.match_info["name"])
        if emu.faults.expire_results:
            raise web.HTTPForbidden(text="link expired")
        return await _serve(request, task, f)

    async def fresh(request: web.Request) -> web.StreamResponse:
        link = emu.download_links.get(request.match_info["token"])
        task_id, name = request.match_info["task_id"], request.match_info["name"]
        if link is None or link[:2] != (task_id, name) or link[2] < emu.clock():
            raise web.HTTPForbidden(text="link expired or unknown")
        task, f = lookup(task_id, name)
        return await _serve(request, task, f)

    async def uploaded(request: web.Request) -> web.Response:
        stored = emu.uploads.get("kieai/" + request.match_info["path"])
        if stored is None:
            raise web.HTTPNotFound(text="not found")
        return web.Response(body=stored.data, content_type=stored.mime_type)

    return [
        web.get("/files/r/{task_id}/{name}", original),
        web.get("/files/d/{token}/{task_id}/{name}", fresh),
        web.get("/files/kieai/{path:.+}", uploaded),
    ]


def control_routes(emu: KieEmulator) -> list[web.RouteDef]:
    """Test-only routes so another process can steer the emulator (no auth: loopback tool)."""

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(emu.faults.to_json())

    async def set_faults(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object")
            emu.faults.update(changes)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(emu.faults.to_json())

    async def reset_faults(request: web.Request) -> web.Response:
        emu.faults.update(type(emu.faults)().to_json())
        return web.json_response(emu.faults.to_json())

    async def tasks(request: web.Request) -> web.Response:
        return web.json_response([emu.record(t) | {"callBackUrl": t.callback_url} for t in emu.tasks.values()])

    async def requests(request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in emu.requests])

    async def callbacks(request: web.Request) -> web.Response:
        return web.json_response([asdict(c) for c in emu.callbacks])

    async def set_credits(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            emu.credits = Decimal(str(body["credits"]))
        except (ValueError, KeyError, TypeError, InvalidOperation):
            return web.json_response({"error": 'body must be {"credits": <number>}'}, status=400)
        return web.json_response({"credits": number(emu.credits)})

    return [
        web.get("/_emulator/faults", get_faults),
        web.post("/_emulator/faults", set_faults),
        web.post("/_emulator/faults/reset", reset_faults),
        web.get("/_emulator/tasks", tasks),
        web.get("/_emulator/requests", requests),
        web.get("/_emulator/callbacks", callbacks),
        web.post("/_emulator/credits", set_credits),
    ]
