"""Support and bans through the real dispatcher: /paysupport reaches every admin with the user
named and is stored; an admin's Telegram reply reaches the user once (replays included); a
banned user gets one polite line per update and nothing else."""

from __future__ import annotations

import pytest
from aiogram.methods import AnswerCallbackQuery, AnswerPreCheckoutQuery, SendMessage

from handlers.texts import tr
from storage import schema
from tests.unit.conversation.conftest import ADMIN_ID, SIGNUP_BONUS, seedream_buttons, texts


def _sent_to(calls, chat_id: int) -> list[str]:
    return [c.text for c in calls if isinstance(c, SendMessage) and c.chat_id == chat_id]


async def _ask_support(harness, user, text: str):
    calls = await harness.send(user, f"/paysupport {text}")
    forwarded = harness.screen(harness.user(ADMIN_ID))
    return calls, forwarded


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_support_message_reaches_the_admin_and_the_reply_reaches_the_user(harness, lang):
    uid = 7001 if lang == "en" else 7002
    ann = harness.user(uid, "Ann", language_code=lang, username="ann_x", last_name="Lee")
    admin = harness.user(ADMIN_ID, "Boss")
    await harness.send(admin, "/start")
    await harness.send(ann, "/start")
    calls, forwarded = await _ask_support(harness, ann, "I paid 50 Stars but got no ⭐")
    assert _sent_to(calls, ADMIN_ID) == [tr("en", "support_forward", user=f"{uid} @ann_x Ann Lee",
                                            text="I paid 50 Stars but got no ⭐")]
    assert _sent_to(calls, uid) == [tr(lang, "paysupport_sent")]
    [stored] = await harness.rows(schema.support_messages, user_id=uid)
    assert stored["text"] == "I paid 50 Stars but got no ⭐"

    reply = harness.updates.message(admin, "Sorry! Credited 50⭐.", reply_to=forwarded)
    calls = await harness.feed(reply)
    assert _sent_to(calls, uid) == [tr(lang, "support_answer", text="Sorry! Credited 50⭐.")]
    assert _sent_to(calls, ADMIN_ID) == [tr("en", "adm_support_reply_sent", user_id=uid)]

    # The same update again (Telegram's redelivery, the inbox replaying it): nothing new for
    # the user, and the admin hears the answer was passed on already.
    again = await harness.feed(reply)
    assert _sent_to(again, uid) == []
    assert _sent_to(again, ADMIN_ID) == [tr("en", "adm_support_reply_dup", user_id=uid)]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_support_without_text_asks_for_it_and_forwards_nothing(harness, lang):
    ann = harness.user(7003, language_code=lang)
    calls = await harness.send(ann, "/support")
    assert _sent_to(calls, 7003) == [tr(lang, "paysupport")]
    assert _sent_to(calls, ADMIN_ID) == []
    assert await harness.rows(schema.support_messages, user_id=7003) == []


async def test_an_admin_reply_to_another_bot_message_is_not_passed_on(harness):
    ann, admin = harness.user(7004), harness.user(ADMIN_ID, "Boss")
    await harness.send(ann, "/start")
    await harness.send(admin, "/help")
    help_message = harness.screen(admin)
    calls = await harness.feed(harness.updates.message(admin, "hello", reply_to=help_message))
    assert _sent_to(calls, 7004) == []
    assert tr("en", "adm_support_reply_sent", user_id=7004) not in texts(calls)


async def test_a_users_reply_to_their_own_chat_is_not_a_support_answer(harness):
    """Only admins' replies are passed on: a user replying in their chat is a prompt as usual."""
    ann, bob = harness.user(7005), harness.user(7006, "Bob")
    await harness.send(ann, "/start")
    await harness.send(bob, "/start")
    await harness.send(ann, "/paysupport help me")
    own = harness.screen(ann)
    calls = await harness.feed(harness.updates.message(bob, "hi", reply_to=own))
    assert _sent_to(calls, 7005) == []


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_banned_user_gets_one_line_and_nothing_else(harness, lang):
    uid = 7010 if lang == "en" else 7011
    ann = harness.user(uid, language_code=lang, username=f"ban_{lang}")
    admin = harness.user(ADMIN_ID, "Boss")
    await harness.send(ann, "/start")
    calls = await harness.send(admin, f"/ban @ban_{lang}")
    assert texts(calls) == [tr("en", "adm_banned", user_id=uid)]
    assert texts(await harness.send(admin, f"/ban {uid}")) == [tr("en", "adm_ban_already",
                                                                   user_id=uid)]
    line = tr(lang, "banned_notice")
    for text in ("/start", "/balance", "/paysupport let me in", "a lighthouse at dusk"):
        calls = await harness.send(ann, text)
        assert [c.text for c in calls] == [line], text
    # A button: the line is the press's answer, nothing else is sent or edited.
    calls = await harness.press(ann, seedream_buttons(lang)["images"])
    assert [type(c) for c in calls] == [AnswerCallbackQuery] and calls[0].text == line
    # A checkout is refused with the line; nothing is charged or queued.
    calls = await harness.feed(harness.updates.pre_checkout(ann, payload="pack:150:165:v1",
                                                            total_amount=150))
    assert [(type(c), c.ok, c.error_message) for c in calls] == [
        (AnswerPreCheckoutQuery, False, line)]
    assert await harness.ledger(uid) == [("signup_bonus", SIGNUP_BONUS)]
    assert await harness.generations(uid) == []
    assert await harness.rows(schema.support_messages, user_id=uid) == []

    calls = await harness.send(admin, f"/unban {uid}")
    assert texts(calls) == [tr("en", "adm_unbanned", user_id=uid)]
    assert texts(await harness.send(admin, f"/unban {uid}")) == [
        tr("en", "adm_unban_already", user_id=uid)]
    calls = await harness.send(ann, "/balance")
    assert line not in texts(calls) and texts(calls)


async def test_ban_usage_unknown_users_and_admins(harness):
    admin = harness.user(ADMIN_ID, "Boss")
    await harness.send(admin, "/start")
    assert texts(await harness.send(admin, "/ban")) == [tr("en", "adm_ban_usage")]
    assert texts(await harness.send(admin, "/unban @nobody_here")) == [
        tr("en", "adm_no_user", who="@nobody_here")]
    assert texts(await harness.send(admin, f"/ban {ADMIN_ID}")) == [tr("en", "adm_ban_admin")]


async def test_ban_is_not_an_admin_command_for_users(harness):
    ann, bob = harness.user(7020), harness.user(7021, "Bob")
    await harness.send(bob, "/start")
    calls = await harness.send(ann, "/ban 7021")
    assert tr("en", "adm_banned", user_id=7021) not in texts(calls)
    assert not (await harness.repository.get_user(7021)).banned


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_admin_help_and_menu_list_ban_and_unban(harness, lang):
    import handlers

    admin = harness.user(ADMIN_ID, "Boss", language_code=lang)
    [shown] = texts(await harness.send(admin, "/help"))
    assert "/ban " in shown and "/unban " in shown
    menu = [c.command for c in handlers.admin_bot_commands(lang)]
    at = menu.index("ban")
    assert menu[at:at + 2] == ["ban", "unban"]
    assert handlers.admin_bot_commands(lang)[at + 1].description == tr(lang, "cmd_unban")
