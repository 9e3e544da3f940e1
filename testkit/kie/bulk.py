"""Bulk control routes for the benchmark (bench/): seed many held tasks, finish them all at once,
hand out their callback bodies, and count requests per route.

    POST /_emulator/bulk/tasks     {"model": "...", "input": {...}, "count": 200,
                                    "callback_urls": ["http://…", …] | null}  -> {"task_ids": [...]}
        Tasks as if created earlier and now `generating`, free of charge, held there (no timer)
        until finished. With callback_urls (one per task, count may be omitted) each task calls
        back when finished.
    POST /_emulator/bulk/finish    {"task_ids": [...] | null, "fail": false} -> {"finished": n}
        Completes the named tasks (null: every unfinished task) in one go; callbacks go out.
    POST /_emulator/bulk/callback_bodies {"task_ids": [...]} -> {"bodies": {task_id: body}}
        The callback body KIE would POST for each task as it stands now.
    GET  /_emulator/stats?since=<monotonic seconds>
        Per API route: count, ok, rate_limited (429), first/last arrival, max in any 1 s window
        (testkit.rates.summary); plus tasks total/final. Times are the emulator's
        time.monotonic(), comparable across processes on one machine.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kie_client.catalog import CatalogError, validate_input
from testkit.rates import summary
from .callbacks import callback_body

if TYPE_CHECKING:
    from .server import KieEmulator

MAX_BULK = 100_000


def bulk_routes(emu: KieEmulator) -> list[web.RouteDef]:
    async def add_tasks(request: web.Request) -> web.Response:
        body = await _body(request)
        urls = body.get("callback_urls")
        count = len(urls) if isinstance(urls, list) else body.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_BULK:
            return _bad(f"count must be 1-{MAX_BULK} (or give callback_urls)")
        model, given = body.get("model"), body.get("input")
        if not isinstance(model, str) or not isinstance(given, dict):
            return _bad("model (string) and input (object) are required")
        try:
            validate_input(model, given)
        except CatalogError as exc:
            return _bad(f"invalid input: {exc.message}")
        ids = [emu.add_held_task(model, dict(given), urls[i] if urls else None).task_id
               for i in range(count)]
        return web.json_response({"task_ids": ids})

    async def finish(request: web.Request) -> web.Response:
        body = await _body(request)
        ids = body.get("task_ids")
        if ids is None:
            tasks = [t for t in emu.tasks.values() if not t.is_final]
        elif isinstance(ids, list) and all(i in emu.tasks for i in ids):
            tasks = [emu.tasks[i] for i in ids]
        else:
            return _bad("task_ids must be null or a list of known task ids")
        done = 0
        for task in tasks:
            if not task.is_final:
                emu.finish(task, fail=bool(body.get("fail", False)))
                done += 1
        return web.json_response({"finished": done})

    async def bodies(request: web.Request) -> web.Response:
        body = await _body(request)
        ids = body.get("task_ids")
        if not isinstance(ids, list) or not all(i in emu.tasks for i in ids):
            return _bad("task_ids must be a list of known task ids")
        return web.json_response({"bodies": {i: callback_body(emu.record(emu.tasks[i])) for i in ids}})

    async def stats(request: web.Request) -> web.Response:
        try:
            since = float(request.query.get("since", "0"))
        except ValueError:
            return _bad("since must be a number (monotonic seconds)")
        times: dict[str, list[float]] = defaultdict(list)
        statuses: dict[str, list[Any]] = defaultdict(list)
        for r in emu.requests:
            if r.at >= since:
                times[r.path].append(r.at)
                statuses[r.path].append(r.status)
        routes = {path: summary(times[path], statuses[path]) for path in times}
        final = sum(1 for t in emu.tasks.values() if t.is_final)
        return web.json_response({"routes": routes, "tasks": {"total": len(emu.tasks), "final": final},
                                  "now": emu.clock()})

    return [
        web.post("/_emulator/bulk/tasks", add_tasks),
        web.post("/_emulator/bulk/finish", finish),
        web.post("/_emulator/bulk/callback_bodies", bodies),
        web.get("/_emulator/stats", stats),
    ]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
