"""Every limit and spec check, seen through a real aiogram Bot, with Telegram's error shape."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest
from aiogram import Bot
from aiogram.exceptions import (TelegramBadRequest, TelegramEntityTooLarge, TelegramForbiddenError,
                                TelegramServerError, TelegramUnauthorizedError)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice

from testkit.telegram import FakeTelegram

from .conftest import make_bot
from .scenario import png_bytes

CHAT = 42
MB = 1 << 20


def png_header(width: int, height: int, pad_to: int = 0) -> bytes:
    """A PNG signature and IHDR chunk claiming width x height (enough for a size check)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data = b"\x89PNG\r\n\x1a\n" + chunk
    return data + b"\x00" * max(0, pad_to - len(data))


@pytest.fixture
async def chat(fake: FakeTelegram) -> int:
    fake.user(CHAT)
    return CHAT


def last_error(fake: FakeTelegram) -> dict:
    response = fake.calls[-1].response
    assert set(response) >= {"ok", "error_code", "description"} and response["ok"] is False
    return response


async def test_text_limits(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    assert (await bot.send_message(chat, "x" * 4096)).text == "x" * 4096
    with pytest.raises(TelegramBadRequest, match=r"message is too long \(text: 4097 characters"):
        await bot.send_message(chat, "x" * 4097)
    assert last_error(fake)["error_code"] == 400
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(chat, "   ")
    sent = await bot.send_message(chat, "ok")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.edit_message_text("y" * 4097, chat_id=chat, message_id=sent.message_id)


async def test_caption_limit(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    photo = BufferedInputFile(png_bytes(), "p.png")
    assert (await bot.send_photo(chat, photo, caption="c" * 1024)).caption == "c" * 1024
    with pytest.raises(TelegramBadRequest, match=r"caption is too long \(caption: 1025"):
        await bot.send_photo(chat, photo, caption="c" * 1025)


async def test_callback_data_limit(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    def markup(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="b", callback_data=data)]])

    await bot.send_message(chat, "fits", reply_markup=markup("é" * 32))  # 64 bytes
    with pytest.raises(TelegramBadRequest, match=r"BUTTON_DATA_INVALID.*\[0\]\[0\]\.callback_data is 65 bytes"):
        await bot.send_message(chat, "too long", reply_markup=markup("a" * 65))


async def test_callback_answer_limit(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.answer_callback_query("1", text="t" * 201)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("unknown-id", text="t" * 200)


async def test_photo_limits(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    with pytest.raises(TelegramBadRequest, match="PHOTO_SAVE_FILE_INVALID.*max 10485760"):
        await bot.send_photo(chat, BufferedInputFile(png_header(100, 100, pad_to=11 * MB), "big.png"))
    with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS: photo is 5001x5000"):
        await bot.send_photo(chat, BufferedInputFile(png_header(5001, 5000), "wide.png"))
    with pytest.raises(TelegramBadRequest, match="ratio"):
        await bot.send_photo(chat, BufferedInputFile(png_header(2100, 100), "strip.png"))
    with pytest.raises(TelegramBadRequest, match="^Telegram server says - Bad Request: IMAGE_PROCESS_FAILED$"):
        await bot.send_photo(chat, BufferedInputFile(b"not an image", "x.png"))
    sent = await bot.send_photo(chat, BufferedInputFile(png_header(5000, 5000), "max.png"))
    assert sent.photo[-1].width == 5000


async def test_upload_and_download_size_limits(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    with pytest.raises(TelegramEntityTooLarge):
        await bot.send_document(chat, BufferedInputFile(b"\x00" * (50 * MB + 1), "huge.bin"))
    assert last_error(fake) == {"ok": False, "error_code": 413, "description": "Request Entity Too Large"}
    doc = await bot.send_document(chat, BufferedInputFile(b"\x00" * (20 * MB + 1), "big.bin"))
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(doc.document.file_id)
    small = await bot.send_document(chat, BufferedInputFile(b"abc", "small.txt"))
    f = await bot.get_file(small.document.file_id)
    assert (await bot.download_file(f.file_path)).read() == b"abc"
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")


async def test_file_ids_resolve_and_keep_their_type(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    first = await bot.send_photo(chat, BufferedInputFile(png_bytes(), "p.png"))
    again = await bot.send_photo(chat, first.photo[-1].file_id)
    assert again.photo[-1].file_id == first.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="can't use file of type Photo as Document"):
        await bot.send_document(chat, first.photo[-1].file_id)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(chat, "AgACunknown")


async def test_invoice_limits(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    one = [LabeledPrice(label="Pack", amount=50)]
    base = dict(chat_id=chat, description="d", payload="p", currency="XTR", prices=one)
    with pytest.raises(TelegramBadRequest, match="title must be 1-32 characters, got 33"):
        await bot.send_invoice(title="t" * 33, **base)
    with pytest.raises(TelegramBadRequest, match="description must be 1-255 characters, got 256"):
        await bot.send_invoice(title="t", **{**base, "description": "d" * 256})
    with pytest.raises(TelegramBadRequest, match="payload must be 1-128 bytes, got 129"):
        await bot.send_invoice(title="t", **{**base, "payload": "p" * 129})
    with pytest.raises(TelegramBadRequest, match="exactly one price, got 2"):
        await bot.send_invoice(title="t", **{**base, "prices": one * 2})
    with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
        await bot.send_invoice(title="t", **{**base, "currency": "USD"})
    with pytest.raises(TelegramBadRequest, match="exactly one price"):
        await bot.create_invoice_link(title="t", description="d", payload="p", currency="XTR", prices=one * 2)
    sent = await bot.send_invoice(title="t" * 32, **base)
    assert sent.invoice.total_amount == 50 and sent.invoice.currency == "XTR"


async def test_chat_errors(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "who?")
    sent = await bot.send_message(chat, "hi")
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=chat, message_id=sent.message_id + 100)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(chat, sent.message_id + 100)
    assert await bot.delete_message(chat, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=chat, message_id=sent.message_id)


async def test_blocked_user_gets_403(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    user = fake.users[chat]
    await bot.send_message(chat, "before")
    user.block()
    with pytest.raises(TelegramForbiddenError, match="Forbidden: bot was blocked by the user"):
        await bot.send_message(chat, "after")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_chat_action(chat, "typing")
    with pytest.raises(TelegramForbiddenError):
        await bot.edit_message_text("edited", chat_id=chat, message_id=user.transcript[0].message_id)
    with pytest.raises(TelegramForbiddenError):
        await bot.send_photo(chat, BufferedInputFile(png_bytes(), "p.png"))
    assert last_error(fake)["error_code"] == 403
    updates = await bot.get_updates(timeout=0)
    assert updates[-1].my_chat_member.new_chat_member.status == "kicked"
    await user.send_text("/start again")  # writing to the bot again unblocks it
    assert (await bot.send_message(chat, "welcome back")).text == "welcome back"
    assert [e.text for e in user.transcript] == ["before", "/start again", "welcome back"]


async def test_wrong_token_is_401(fake: FakeTelegram) -> None:
    stranger = make_bot(fake, token="123456:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()
    assert fake.calls[-1].status == 401 and fake.calls[-1].response["description"] == "Unauthorized"


async def test_server_error_fault(fake: FakeTelegram, bot: Bot, chat: int) -> None:
    fake.faults.server_error_next(1, status=502)
    with pytest.raises(TelegramServerError):
        await bot.send_message(chat, "x")
    assert (await bot.send_message(chat, "y")).text == "y"


async def test_slow_answer_fault_uses_injected_sleep() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async with FakeTelegram(token="123456:TEST-token", sleep=fake_sleep) as fake:
        bot = make_bot(fake)
        try:
            fake.faults.delay(2.5, methods={"getMe"})
            await bot.get_me()
            await bot.get_webhook_info()
        finally:
            await bot.session.close()
    assert slept == [2.5]


async def test_a_call_held_by_a_delay_is_in_progress_until_answered() -> None:
    release = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await release.wait()

    async with FakeTelegram(token="123456:TEST-token", sleep=held_sleep) as fake:
        bot = make_bot(fake)
        try:
            fake.faults.delay(1.0, methods={"getMe"})
            pending = asyncio.create_task(bot.get_me())
            await fake.notifier.wait_for(lambda: fake.calls_in_progress, 10, "getMe to arrive")
            assert [c.method for c in fake.calls_in_progress] == ["getMe"] and not fake.calls
            idle = asyncio.create_task(fake.wait_idle(timeout=10))
            await asyncio.sleep(0)
            assert not idle.done()
            release.set()
            await idle
            await pending
            assert not fake.calls_in_progress and [c.method for c in fake.calls] == ["getMe"]
        finally:
            await bot.session.close()


async def test_a_held_method_is_answered_only_after_release(fake, bot) -> None:
    fake.faults.hold({"sendMessage"})
    fake.user(77)
    held = asyncio.create_task(bot.send_message(77, "held"))
    await fake.notifier.wait_for(lambda: fake.calls_in_progress, 10, "sendMessage to arrive")
    assert (await bot.get_me()).is_bot  # other methods pass
    assert not held.done() and not fake.chats[77].live()
    fake.faults.release()
    assert (await held).text == "held"
    assert (await bot.send_message(77, "not held")).text == "not held"
