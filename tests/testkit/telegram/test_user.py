"""The simulated user: what it sends, what it sees, and the waiting helpers."""

from __future__ import annotations

import asyncio
import io

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from PIL import Image

from testkit.telegram import FakeTelegram, FakeUserError
from testkit.telegram.limits import image_size

from .scenario import png_bytes


def markup(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[list(buttons)])


async def test_command_text_and_media_updates(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.user(3, first_name="Ann", language_code="ru", username="ann")
    assert fake.user(3) is ann
    await ann.send_command("start", "promo42")
    picture = png_bytes(1600, 1200)
    await ann.send_photo(picture, caption="blue")
    await ann.send_document(picture, "scan.png")
    updates = await bot.get_updates(timeout=0)
    command, photo, document = (u.message for u in updates)
    assert command.text == "/start promo42" and command.entities[0].type == "bot_command"
    assert command.entities[0].length == 6 and command.from_user.language_code == "ru"
    assert command.chat.type == "private" and command.chat.id == 3 and command.from_user.username == "ann"
    assert [(p.width, p.height) for p in photo.photo] == [(90, 68), (320, 240), (1600, 1200)]
    assert photo.caption == "blue"
    downloaded = await bot.download(photo.photo[-1])
    assert downloaded.read() == picture
    assert (document.document.file_name, document.document.mime_type) == ("scan.png", "image/png")
    with pytest.raises(FakeUserError, match="not a PNG"):
        await ann.send_photo(b"garbage")


async def test_taps_and_callback_answers(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.user(4)
    first = await bot.send_message(4, "pick", reply_markup=markup(
        InlineKeyboardButton(text="Yes", callback_data="y"), InlineKeyboardButton(text="Site", url="https://x.org")))
    await bot.send_message(4, "again", reply_markup=markup(InlineKeyboardButton(text="Yes", callback_data="y2")))
    tapping = asyncio.create_task(ann.tap("Yes"))  # the latest message having the button
    query = (await bot.get_updates(timeout=5))[0].callback_query
    assert query.data == "y2" and query.message.text == "again" and query.from_user.id == 4
    await bot.answer_callback_query(query.id, text="noted", show_alert=True)
    answer = await tapping
    assert (answer.answered, answer.text, answer.show_alert) == (True, "noted", True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)  # twice

    older = asyncio.create_task(ann.tap("Yes", message=first.message_id, timeout=0.2))
    assert (await older).answered is False
    with pytest.raises(FakeUserError, match="no inline button 'Nope'"):
        await ann.tap("Nope")
    with pytest.raises(FakeUserError, match="not a callback button"):
        await ann.tap("Site")
    with pytest.raises(FakeUserError, match="no invoice"):
        await ann.pay()


async def test_late_callback_answer_is_too_old() -> None:
    from .conftest import make_bot

    now = [100.0]
    async with FakeTelegram(token="123456:TEST-token", callback_timeout=30.0, clock=lambda: now[0]) as fake:
        bot = make_bot(fake)
        try:
            ann = fake.user(4)
            await bot.send_message(4, "pick", reply_markup=markup(InlineKeyboardButton(text="Go", callback_data="g")))
            tapping = asyncio.create_task(ann.tap("Go", timeout=0.2))
            query = (await bot.get_updates(timeout=5))[0].callback_query
            now[0] += 30.5
            with pytest.raises(TelegramBadRequest, match="query is too old"):
                await bot.answer_callback_query(query.id)
            assert not (await tapping).answered
        finally:
            await bot.session.close()


async def test_transcript_follows_edits_deletions_and_media(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.user(5, first_name="Ann")
    await ann.send_text("hi")
    kb = markup(InlineKeyboardButton(text="A", callback_data="a"), InlineKeyboardButton(text="B", callback_data="b"))
    menu = await bot.send_message(5, "menu", reply_markup=kb)
    gone = await bot.send_message(5, "soon gone")
    photo = await bot.send_photo(5, BufferedInputFile(png_bytes(), "result.png"), caption="v1")
    await bot.edit_message_text("menu v2", chat_id=5, message_id=menu.message_id, reply_markup=kb)
    await bot.edit_message_caption(chat_id=5, message_id=photo.message_id, caption="v2")
    await bot.delete_message(5, gone.message_id)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=5, message_id=menu.message_id, reply_markup=kb)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=5, message_id=1)
    with pytest.raises(TelegramBadRequest, match="no text in the message"):
        await bot.edit_message_text("x", chat_id=5, message_id=photo.message_id)
    entries = ann.transcript
    assert [(e.from_bot, e.kind, e.text, e.buttons, e.edited) for e in entries] == [
        (False, "text", "hi", [], False),
        (True, "text", "menu v2", [["A", "B"]], True),
        (True, "photo", "v2", [], True),
    ]
    assert entries[2].media[0].data == png_bytes() and entries[2].media[0].kind == "photo"
    assert ann.render() == (
        "Ann: hi\n"
        "Fake Bot: menu v2 (edited)\n"
        "    [A] [B]\n"
        f"Fake Bot: [photo {entries[2].media[0].file_id} ({len(png_bytes())} bytes)] v2 (edited)"
    )


async def test_waiting_helpers(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.user(6)
    await ann.send_text("go")
    mark = fake.mark()

    async def bot_side() -> None:
        await bot.send_chat_action(6, "typing")
        await bot.send_message(6, "one")
        await bot.send_message(6, "two")

    task = asyncio.create_task(bot_side())
    assert (await ann.wait_for_message(lambda m: m.text == "two")).text == "two"
    assert (await ann.wait_for_message()).text == "one"  # not returned before, so still available
    call = await fake.wait_for_call("SENDMESSAGE", lambda c: c.params["text"] == "one", since=mark)
    assert call.ok and call.result["text"] == "one" and call.status == 200
    await task
    with pytest.raises(asyncio.TimeoutError, match="a bot message"):
        await ann.wait_for_message(timeout=0.05)
    with pytest.raises(asyncio.TimeoutError, match="a sendPhoto call"):
        await fake.wait_for_call("sendPhoto", timeout=0.05)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_image_size_reads_headers(fmt: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (123, 45), "white").save(buf, fmt)
    assert image_size(buf.getvalue()) == (123, 45)


def test_image_size_of_lossless_webp_and_garbage() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (31, 17)).save(buf, "WEBP", lossless=True)
    assert image_size(buf.getvalue()) == (31, 17)
    assert image_size(b"\xff\xd8\xff") is None and image_size(b"") is None


async def test_calls_and_updates_are_snapshots(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.user(7)
    sent = await bot.send_message(7, "first")
    await bot.edit_message_text("second", chat_id=7, message_id=sent.message_id)
    assert fake.calls[0].result["text"] == "first" and ann.transcript[0].text == "second"
    mine = await ann.send_text("mine")
    fake.chats[7].messages[mine.message_id].message["text"] = "changed later"
    assert (await bot.get_updates(timeout=0))[0].message.text == "mine"


async def test_replies_and_get_chat(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.user(8, first_name="Ann", username="ann")
    mine = await ann.send_text("question")
    update = (await bot.get_updates(timeout=0))[0]
    assert update.message.message_id == mine.message_id
    answer = await bot.send_message(8, "answer", reply_parameters={"message_id": mine.message_id})
    assert answer.reply_to_message.text == "question"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(8, "x", reply_parameters={"message_id": 999})
    loose = await bot.send_message(8, "x", reply_parameters={"message_id": 999, "allow_sending_without_reply": True})
    assert loose.reply_to_message is None
    chat = await bot.get_chat(8)
    assert (chat.id, chat.first_name, chat.username, chat.type) == (8, "Ann", "ann", "private")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(404)


async def test_save_media_writes_the_files_the_user_got(fake: FakeTelegram, bot: Bot, tmp_path) -> None:
    ann = fake.user(9)
    await ann.send_photo(png_bytes(), caption="mine")
    await bot.send_document(9, BufferedInputFile(b"%PDF", "../report.pdf"))
    await bot.send_video(9, "https://cdn.example.com/v.mp4")  # by URL: no bytes to save
    paths = ann.save_media(tmp_path / "out")
    assert [p.name for p in paths] == ["0001_0_photo.png", "0002_0_report.pdf"]
    assert paths[0].read_bytes() == png_bytes() and paths[1].read_bytes() == b"%PDF"
    assert all(p.parent == tmp_path / "out" for p in paths)
