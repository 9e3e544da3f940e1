"""The aiohttp application: both KIE hosts, files and control routes on one port."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from .bulk import bulk_routes
from .routes_chat import chat_routes
from .routes_files import control_routes, file_routes
from .routes_market import market_routes
from .routes_upload import upload_routes
from .routes_veo import veo_routes

if TYPE_CHECKING:
    from .server import KieEmulator, RecordedRequest


def build_app(emu: KieEmulator) -> web.Application:
    from .server import RecordedRequest

    @web.middleware
    async def record(request: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        body = None
        if request.content_type == "application/json" and request.can_read_body:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
        entry: RecordedRequest = RecordedRequest(request.method, request.path, dict(request.query), body,
                                                 at=emu.clock())
        emu.requests.append(entry)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            entry.status = exc.status
            raise
        entry.status = response.status
        if isinstance(response, web.Response) and response.content_type == "application/json" and response.body:
            try:
                entry.status = json.loads(response.body)["code"]  # type: ignore[arg-type]
            except (ValueError, KeyError, TypeError):
                pass
        return response

    # Uploads may be large base64 bodies; KIE documents no hard limit.
    app = web.Application(middlewares=[record], client_max_size=256 * 1024 * 1024)
    app.add_routes(market_routes(emu) + veo_routes(emu) + upload_routes(emu) + file_routes(emu) + control_routes(emu)
                   + bulk_routes(emu) + chat_routes(emu))
    return app
