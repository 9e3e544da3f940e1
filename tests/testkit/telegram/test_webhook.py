"""Webhook mode: aiogram's SimpleRequestHandler on loopback, retries, dropped and duplicate deliveries."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramConflictError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from testkit.telegram import FakeTelegram

from .scenario import make_router, run_conversation, set_commands

SECRET = "s3cret_Token-1"


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


class Receiver:
    """A webhook endpoint that answers with scripted statuses and records what it got."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, Any], dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((json.loads(await request.read()), dict(request.headers)))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({}, status=status)

    @property
    def update_ids(self) -> list[int]:
        return [body["update_id"] for body, _ in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner, url = await serve(app)
    yield rec, f"{url}/hook"
    await runner.cleanup()


async def test_conversation_in_webhook_mode(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()
    dp.include_router(make_router())
    app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=SECRET).register(app, path="/tg/webhook")
    runner, url = await serve(app)
    try:
        await set_commands(bot)
        assert await bot.set_webhook(f"{url}/tg/webhook", secret_token=SECRET,
                                     allowed_updates=dp.resolve_used_update_types())
        info = await bot.get_webhook_info()
        assert info.url == f"{url}/tg/webhook" and info.pending_update_count == 0
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        await run_conversation(fake)
        assert fake.updates.deliveries and all(d.status == 200 for d in fake.updates.deliveries)
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_wrong_secret_is_refused_by_aiogram_and_retried(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()
    dp.include_router(make_router())
    app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=SECRET).register(app, path="/tg/webhook")
    runner, url = await serve(app)
    try:
        await bot.set_webhook(f"{url}/tg/webhook", secret_token="wrong")
        ann = fake.user(5, first_name="Bo")
        await ann.send_text("hi")
        await fake.notifier.wait_for(lambda: len(fake.updates.deliveries) >= 2, 5, "two attempts")
        assert {d.status for d in fake.updates.deliveries} == {401}
        assert "401" in (await bot.get_webhook_info()).last_error_message
        await bot.set_webhook(f"{url}/tg/webhook", secret_token=SECRET)
        assert (await ann.wait_for_message()).text == "echo: hi"
    finally:
        await runner.cleanup()


async def test_non_2xx_is_retried_with_backoff(fake: FakeTelegram, bot: Bot, receiver) -> None:
    rec, url = receiver
    rec.statuses = [500, 502]
    await bot.set_webhook(url, secret_token=SECRET)
    await fake.user(7).send_text("one")
    await fake.notifier.wait_for(lambda: fake.updates.delivered, 5, "delivery")
    assert [d.status for d in fake.updates.deliveries] == [500, 502, 200]
    assert len(set(rec.update_ids)) == 1 and len(rec.update_ids) == 3
    assert all(h["X-Telegram-Bot-Api-Secret-Token"] == SECRET for _, h in rec.received)
    assert rec.received[0][0]["message"]["text"] == "one"
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 502 Bad Gateway"


async def test_dropped_first_delivery_arrives_once_later(fake: FakeTelegram, bot: Bot, receiver) -> None:
    rec, url = receiver
    await bot.set_webhook(url)
    fake.faults.drop_deliveries(1)
    user = fake.user(8)
    await user.send_text("a")
    await user.send_text("b")
    await fake.notifier.wait_for(lambda: len(fake.updates.delivered) == 2, 5, "deliveries")
    assert [d.dropped for d in fake.updates.deliveries] == [True, False, False]
    assert [body["message"]["text"] for body, _ in rec.received] == ["a", "b"]
    assert all("X-Telegram-Bot-Api-Secret-Token" not in h for _, h in rec.received)


async def test_duplicate_delivery_by_webhook(fake: FakeTelegram, bot: Bot, receiver) -> None:
    rec, url = receiver
    await bot.set_webhook(url)
    fake.faults.duplicate_next(1)
    await fake.user(9).send_text("twice")
    await fake.notifier.wait_for(lambda: len(fake.updates.delivered) == 2, 5, "deliveries")
    assert len(rec.update_ids) == 2 and rec.update_ids[0] == rec.update_ids[1]


async def test_duplicate_delivery_by_get_updates(fake: FakeTelegram, bot: Bot) -> None:
    fake.faults.duplicate_next(1)
    await fake.user(10).send_text("twice")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [updates[0].update_id] * 2
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == []


async def test_webhook_reply_may_carry_a_method(fake: FakeTelegram, bot: Bot) -> None:
    async def handle(request: web.Request) -> web.Response:
        update = json.loads(await request.read())
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "from reply"})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner, url = await serve(app)
    try:
        await bot.set_webhook(f"{url}/hook")
        user = fake.user(11)
        await user.send_text("hi")
        assert (await user.wait_for_message()).text == "from reply"
        assert fake.calls[-1].via_webhook_reply
    finally:
        await runner.cleanup()


async def test_aiogram_returned_method_is_executed_from_the_webhook_reply(fake: FakeTelegram, bot: Bot) -> None:
    from aiogram import Router
    from aiogram.types import BufferedInputFile, Message

    from .scenario import png_bytes

    router = Router()

    @router.message()
    async def reply(message: Message):  # returned, not awaited: aiogram puts it in the HTTP reply
        if message.text == "photo":
            return message.answer_photo(BufferedInputFile(png_bytes(), "r.png"), caption="in reply")
        return message.answer(f"reply to {message.text}")

    dp = Dispatcher()
    dp.include_router(router)
    app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=bot, handle_in_background=False).register(app, path="/hook")
    runner, url = await serve(app)
    try:
        await bot.set_webhook(f"{url}/hook")
        user = fake.user(12)
        await user.send_text("hi")
        assert (await user.wait_for_message()).text == "reply to hi"
        await user.send_text("photo")
        photo = await user.wait_for_message()
        assert photo.text == "in reply" and photo.media[0].data == png_bytes()
        assert [c.via_webhook_reply for c in fake.calls if c.method in ("sendMessage", "sendPhoto")] == [True, True]
    finally:
        await runner.cleanup()


async def test_queues_per_chat_go_out_in_parallel_but_in_order_within_a_chat(fake: FakeTelegram, bot: Bot) -> None:
    b_arrived = asyncio.Event()
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        update = json.loads(await request.read())
        text = update["message"]["text"]
        seen.append(text)
        if text == "a1":
            await asyncio.wait_for(b_arrived.wait(), 5)  # held open until another chat's update arrives
        if text == "b1":
            b_arrived.set()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner, url = await serve(app)
    try:
        await bot.set_webhook(f"{url}/hook")
        a, b = fake.user(31), fake.user(32)
        await a.send_text("a1")
        await a.send_text("a2")
        await b.send_text("b1")
        await fake.notifier.wait_for(lambda: len(fake.updates.delivered) == 3, 5, "deliveries")
        assert seen == ["a1", "b1", "a2"]  # a2 waited for a1; b1 did not
    finally:
        await runner.cleanup()


async def test_backoff_doubles_and_honours_retry_after_from_the_webhook() -> None:
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    answers = [web.json_response({}, status=500), web.json_response({}, status=503),
               web.json_response({}, status=429, headers={"Retry-After": "7"})]

    async def handle(request: web.Request) -> web.Response:
        return answers.pop(0) if answers else web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner, url = await serve(app)
    try:
        async with FakeTelegram(token="1:T", webhook_backoff=(1.0, 60.0), sleep=record_sleep) as fake:
            await fake.call("setWebhook", {"url": f"{url}/hook"})
            await fake.user(1).send_text("x")
            await fake.notifier.wait_for(lambda: fake.updates.delivered, 5, "delivery")
    finally:
        await runner.cleanup()
    assert slept == [1.0, 2.0, 7]
