"""bot/telegram_session.py against a real aiohttp server on loopback standing in for the Bot API:
a call without a file goes as one JSON body (bot defaults resolved, nested objects as objects,
absent values left out), a call uploading a file still goes as aiogram's multipart form, and
Telegram's errors still reach the caller as aiogram's exceptions."""

from __future__ import annotations

import datetime
import json

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web

from bot.telegram_session import KiebotSession

MESSAGE = {"message_id": 7, "date": 1_700_000_000, "chat": {"id": 42, "type": "private"}, "text": "hi"}


class FakeApi:
    """Records each call's method, content type and body; answers from `answers` by method."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bytes]] = []
        self.answers: dict[str, tuple[int, dict]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append((method, request.content_type, await request.read()))
        status, body = self.answers.get(method, (200, {"ok": True, "result": MESSAGE}))
        return web.json_response(body, status=status)


@pytest.fixture
async def api_and_bot():
    api = FakeApi()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    session = KiebotSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    bot = Bot("42:secret", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    try:
        yield api, bot
    finally:
        await session.close()
        await runner.cleanup()


async def test_a_call_without_a_file_is_one_json_body(api_and_bot):
    api, bot = api_and_bot
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="💰 Balance", callback_data="m:b")]])
    message = await bot.send_message(42, "héllo", reply_markup=keyboard, disable_notification=False)
    method, content_type, body = api.calls[-1]
    assert (method, content_type) == ("sendMessage", "application/json")
    assert json.loads(body) == {
        "chat_id": 42, "text": "héllo", "parse_mode": "HTML", "disable_notification": False,
        "reply_markup": {"inline_keyboard": [[{"text": "💰 Balance", "callback_data": "m:b"}]]},
    }
    assert message.message_id == 7 and message.bot is bot


async def test_dates_go_as_unix_time_and_a_call_with_no_parameters_as_an_empty_object(api_and_bot):
    api, bot = api_and_bot
    api.answers["banChatMember"] = (200, {"ok": True, "result": True})
    api.answers["getMe"] = (200, {"ok": True, "result": {"id": 42, "is_bot": True, "first_name": "k"}})
    until = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)
    assert await bot.ban_chat_member(-100, 5, until_date=until) is True
    await bot.get_me()
    (_, _, ban), (_, me_type, me) = api.calls[-2:]
    assert json.loads(ban) == {"chat_id": -100, "user_id": 5, "until_date": int(until.timestamp())}
    assert (me_type, json.loads(me)) == ("application/json", {})


async def test_a_file_upload_still_goes_as_a_multipart_form(api_and_bot):
    api, bot = api_and_bot
    await bot.send_photo(42, BufferedInputFile(b"\x89PNG...", filename="a.png"), caption="c")
    method, content_type, body = api.calls[-1]
    assert (method, content_type) == ("sendPhoto", "multipart/form-data")
    assert b'filename="a.png"' in body and b"\x89PNG..." in body and b"attach://" in body


async def test_telegram_errors_reach_the_caller_as_aiogram_exceptions(api_and_bot):
    api, bot = api_and_bot
    api.answers["sendMessage"] = (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                                        "parameters": {"retry_after": 3}})
    with pytest.raises(TelegramRetryAfter) as flood:
        await bot.send_message(42, "x")
    assert flood.value.retry_after == 3
    api.answers["sendMessage"] = (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(42, "x")
