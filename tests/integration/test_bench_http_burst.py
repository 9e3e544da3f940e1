"""bench/http_burst.py, the callbacks measure's driver, against a real aiohttp server on loopback:
every request reaches the server whole, answers come back in order with their statuses, and
both framings of an answer (Content-Length, chunked) are read to the end."""

from __future__ import annotations

import json

from aiohttp import web

from bench.http_burst import post_all


async def serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def test_a_burst_reaches_the_server_whole_and_answers_come_back_in_order():
    seen: list[tuple[str, str, dict]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        seen.append((request.path, request.query.get("token", ""), body))
        if body["n"] % 3 == 0:
            return web.json_response({"code": 404}, status=404)
        if body["n"] % 3 == 1:  # chunked framing
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b'{"ok":')
            await response.write(b"true}")
            await response.write_eof()
            return response
        return web.json_response({"ok": True})

    runner, url = await serve(handler)
    try:
        calls = [(f"{url}/kie/callback/{n}?token=t{n}", {"n": n, "text": "é" * 50}) for n in range(30)]
        answers = await post_all(calls)
        again = await post_all(calls[:4], gap=0.01)
    finally:
        await runner.cleanup()
    assert [a.status for a in answers] == [404 if n % 3 == 0 else 200 for n in range(30)]
    assert all(a.ms > 0 for a in answers)
    assert sorted((p, t, b["n"]) for p, t, b in seen[:30]) == sorted(
        (f"/kie/callback/{n}", f"t{n}", n) for n in range(30))
    assert all(b["text"] == "é" * 50 for _, _, b in seen)
    assert [a.status for a in again] == [404, 200, 200, 404]
