"""The Bot API double answers the way the conversation tests rely on."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import GetChatMember, SendMessage
from aiogram.utils.keyboard import InlineKeyboardBuilder

from testkit.mocked_bot import MockedBot, Updates, button_rows, tg_user


def keyboard(*labels: str):
    kb = InlineKeyboardBuilder()
    for n, label in enumerate(labels):
        kb.button(text=label, callback_data=f"b:{n}")
    return kb.as_markup()


async def test_messages_are_numbered_edited_in_place_and_pressed_by_their_text():
    bot = MockedBot()
    sent = await bot.send_message(7, "Pick one", reply_markup=keyboard("Yes", "No"))
    other = await bot.send_message(7, "Plain")
    assert (sent.message_id, other.message_id, sent.chat.type) == (1, 2, "private")

    await bot.edit_message_text("Picked", chat_id=7, message_id=sent.message_id)
    assert [(m.text, button_rows(m.reply_markup)) for m in bot.session.shown(7)] == [
        ("Picked", []), ("Plain", [])]  # an edit without a keyboard removes it, as in Telegram
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Picked", chat_id=7, message_id=sent.message_id)

    updates = Updates(bot)
    with pytest.raises(LookupError, match="no button 'No'"):
        updates.press(tg_user(7), "No")
    press = updates.press(tg_user(7), "No", message=sent)  # the keyboard as it was
    assert (press.callback_query.data, press.callback_query.message.message_id) == ("b:1", 1)


async def test_queued_answers_and_errors_come_first_then_the_defaults():
    bot = MockedBot()
    bot.session.add_error(SendMessage, error_code=429, description="Too Many Requests",
                          retry_after=3)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(7, "one")
    assert (await bot.send_message(7, "two")).text == "two"
    assert [c.text for c in bot.session.calls_of(SendMessage)] == ["one", "two"]

    # getChatMember has no sensible default: unqueued, it fails loudly and is remembered.
    with pytest.raises(NotImplementedError, match="getChatMember"):
        await bot.get_chat_member(7, 7)
    assert bot.session.unanswered == ["getChatMember"]
    bot.session.add_result(GetChatMember, {"status": "member", "user": {
        "id": 7, "is_bot": False, "first_name": "Ann"}})
    assert (await bot.get_chat_member(7, 7)).status == "member"


async def test_a_photo_is_downloaded_as_the_bytes_it_was_sent_with():
    bot = MockedBot()
    update = Updates(bot).photo(tg_user(7), b"jpeg-bytes" * 1000, caption="hi")
    assert update.message.caption == "hi" and len(update.message.photo) == 2
    file = await bot.download(update.message.photo[-1].file_id)
    assert file.getvalue() == b"jpeg-bytes" * 1000
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nobody-sent-this")
