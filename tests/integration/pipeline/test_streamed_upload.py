"""A stored 45 MB video goes to Telegram streamed from the media store: Python's peak allocation
while aiogram uploads it (through its real AiohttpSession, to a loopback server that discards the
body as it arrives) stays far below the file's size — it is never read whole."""

from __future__ import annotations

import tracemalloc

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendVideo
from aiohttp import web

from bot.services.pipeline.deliver import StoredInputFile
from storage.media import LocalMediaStore

SIZE = 45 * 1024 * 1024
TOKEN = "123456:" + "A" * 35


async def test_a_45_mb_video_is_uploaded_without_holding_it_in_memory(tmp_path):
    received = {"bytes": 0}

    async def send_video(request: web.Request) -> web.Response:
        async for chunk in request.content.iter_chunked(256 * 1024):
            received["bytes"] += len(chunk)  # the multipart body, discarded as it arrives
        return web.json_response({"ok": True, "result": {
            "message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}})

    app = web.Application(client_max_size=SIZE * 2)
    app.router.add_post(f"/bot{TOKEN}/sendVideo", send_video)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]

    store = LocalMediaStore(tmp_path / "media", "http://127.0.0.1")
    path = "1/video/7_0_1700000000.mp4"
    target = store.file_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as f:  # written in pieces: the test itself holds no 45 MB buffer
        for _ in range(SIZE // (1024 * 1024)):
            f.write(b"\x00" * (1024 * 1024))

    bot = Bot(TOKEN, session=AiohttpSession(
        api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}")))
    try:
        tracemalloc.start()
        try:
            await bot(SendVideo(chat_id=1, video=StoredInputFile(store, path, "7.mp4")))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        await bot.session.close()
        await runner.cleanup()
    assert SIZE < received["bytes"] < SIZE + 4096  # the whole file (and a little multipart)
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB while uploading 45 MiB"
