"""Malformed webhook bodies carrying the valid secret: 400 with a reason, nothing stored, and the
bot goes on serving the next genuine update (the whole bot over HTTP, as Telegram reaches it)."""

from __future__ import annotations

import json

import aiohttp
import sqlalchemy as sa

from storage.schema import updates_inbox
from tests.e2e.pipeline.helpers import plain_stack

DEEP = "[" * 5000 + "]" * 5000
MESSAGE = {"message_id": 1, "date": 1_764_000_000, "chat": {"id": 555, "type": "private"},
           "from": {"id": 555, "is_bot": False, "first_name": "Ann"}, "text": "/start"}

BAD_BODIES = [
    (b"this is not json", "body is not JSON"),
    (b"", "body is not JSON"),
    (DEEP.encode(), "body is nested too deeply"),
    (('{"update_id": 1, "message": ' + DEEP + "}").encode(), "body is nested too deeply"),
    (b'{"update_id": 1, "message": {"text": "\xff\xfe"}}', "body is not JSON"),
    (json.dumps([{"update_id": 1, "message": MESSAGE}]).encode(), "update is not a JSON object"),
    (json.dumps({"update_id": "1", "message": MESSAGE}).encode(), "update_id missing or not an integer"),
    (json.dumps({"update_id": 1, "message": "hello"}).encode(),
     "not a Telegram update: message: Input should be a valid dictionary or instance of Message"),
    (json.dumps({"update_id": 1, "message": {**MESSAGE, "chat": {"id": "x", "type": "private"}}}).encode(),
     "not a Telegram update: message.chat.id: Input should be a valid integer, unable to parse string as an integer"),
    (json.dumps({"update_id": 1, "message": {**MESSAGE, "chat": {"id": 2**64, "type": "private"}}}).encode(),
     "a number does not fit in 64 bits"),
    (json.dumps({"update_id": 1, "callback_query": {"id": 5, "from": MESSAGE["from"],
                                                     "chat_instance": "c", "data": "x"}}).encode(),
     "not a Telegram update: callback_query.id: Input should be a valid string"),
]


async def _rows(stack) -> int:
    async with stack.app.engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(updates_inbox))


async def test_malformed_bodies_get_400_with_a_reason_and_store_nothing(tmp_path):
    async with plain_stack(tmp_path, webhook=True) as stack, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{stack.port}/tg/webhook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": stack.app.telegram_secret,
                   "Content-Type": "application/json"}
        for body, reason in BAD_BODIES:
            async with http.post(url, data=body, headers=headers) as resp:
                answer = await resp.json()
                assert (resp.status, answer) == (400, {"ok": False, "reason": reason}), body[:80]
        assert await _rows(stack) == 0

        # The door stays open for the real thing.
        ann = stack.telegram.user(555, first_name="Ann", language_code="en")
        await ann.send_command("/start")
        await ann.wait_for_message(lambda m: m.from_bot, timeout=15)
        assert await _rows(stack) == 1
