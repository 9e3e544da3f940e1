"""/start, the language, and chats the bot does not talk in."""

from __future__ import annotations

import pytest
from aiogram.methods import SendMessage

from handlers.texts import tr
from storage import schema
from testkit.mocked_bot import button_rows, group_chat
from tests.unit.conversation.conftest import SIGNUP_BONUS, texts


def menu_rows(lang: str) -> list[list[str]]:
    return [[tr(lang, "job_create_image"), tr(lang, "job_edit_photo")],
            [tr(lang, "job_animate_photo"), tr(lang, "job_text_to_video")],
            [tr(lang, "job_talking_photo"), tr(lang, "job_tools")],
            [tr(lang, "btn_templates")],
            [tr(lang, "btn_balance"), tr(lang, "btn_library")],
            [tr(lang, "btn_help")]]


async def test_start_registers_pays_the_bonus_once_and_shows_the_menu(harness):
    ann = harness.user(1001, "Ann")
    first = await harness.send(ann, "/start")
    assert [type(c) for c in first] == [SendMessage]
    assert texts(first) == [
        tr("en", "welcome", name="Ann") + "\n" + tr("en", "welcome_bonus", bonus=SIGNUP_BONUS)
        + "\n\n" + tr("en", "main_menu", balance=SIGNUP_BONUS)]
    assert button_rows(first[0].reply_markup) == menu_rows("en")

    again = await harness.send(ann, "/start")
    assert texts(again) == [tr("en", "welcome", name="Ann") + "\n\n"
                            + tr("en", "main_menu", balance=SIGNUP_BONUS)]
    assert await harness.ledger(1001) == [("signup_bonus", SIGNUP_BONUS)]
    [user] = await harness.rows(schema.users, id=1001)
    assert (user["first_name"], user["language"], user["balance"]) == ("Ann", "en", SIGNUP_BONUS)


async def test_a_deep_link_payload_is_kept_on_the_user(harness):
    ann = harness.user(1002, "Ann")
    await harness.send(ann, "/start promo42")
    await harness.send(ann, "/start other")
    [user] = await harness.rows(schema.users, id=1002)
    assert user["start_payload"] == "promo42"


@pytest.mark.parametrize("language_code", ["ru", "uk"])
async def test_a_russian_speaking_user_sees_russian(harness, language_code):
    olga = harness.user(1010, "Оля", language_code=language_code)
    calls = await harness.send(olga, "/start")
    assert texts(calls) == [
        tr("ru", "welcome", name="Оля") + "\n" + tr("ru", "welcome_bonus", bonus=SIGNUP_BONUS)
        + "\n\n" + tr("ru", "main_menu", balance=SIGNUP_BONUS)]
    assert button_rows(calls[0].reply_markup) == menu_rows("ru")
    assert texts(await harness.send(olga, "/nonsense")) == [tr("ru", "unknown_command")]
    [user] = await harness.rows(schema.users, id=1010)
    assert user["language"] == "ru"


async def test_group_chat_messages_are_ignored_and_nobody_is_registered(harness):
    bob = harness.user(1020, "Bob")
    friends = group_chat()
    for text in ("/start", "a cat in a hat", "/balance"):
        assert await harness.send(bob, text, chat=friends) == []
    assert await harness.rows(schema.users, id=1020) == []
    # The same person in a private chat is answered as usual.
    assert texts(await harness.send(bob, "/start"))[0].startswith(tr("en", "welcome", name="Bob"))


async def test_a_conversation_leaves_the_shared_cached_keyboards_as_built(harness):
    """handlers.keyboards caches markups and every reply shares them: nothing on the way to
    Telegram (handlers, aiogram, the session) may change one."""
    from handlers import keyboards

    cached = [keyboards.main_menu("en"), keyboards.menu_only_kb("en"), keyboards.balance_kb("en")]
    before = [kb.model_dump() for kb in cached]
    ann = harness.user(1030, "Ann")
    await harness.send(ann, "/start")
    for button in ("job_create_image", "btn_back", "btn_balance", "btn_menu", "btn_help"):
        await harness.press(ann, tr("en", button))
    await harness.send(ann, "/start")
    assert [kb.model_dump() for kb in cached] == before
    assert keyboards.main_menu("en") is cached[0]
