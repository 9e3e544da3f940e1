"""The callbacks measure's floor: a bare aiohttp server answering each POST with a small JSON
body and doing nothing else — what any Python web server on this machine answers at the least.
`python -m bench.floor_server` prints its URL once it listens."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"ok": True})


async def serve() -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
