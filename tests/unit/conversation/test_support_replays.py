"""Support leftovers through the real dispatcher: a replayed /paysupport update reaches the
admins once (keyed by the user's message in the database), and an admin's reply that is a photo,
with or without a caption, reaches the user in their language, once."""

from __future__ import annotations

import pytest
from aiogram.methods import SendMessage, SendPhoto
from aiogram.types import Update

from handlers.selftest import test_png as png_of
from handlers.texts import tr
from storage import schema
from tests.unit.conversation.conftest import ADMIN_ID


def _messages_to(calls, chat_id: int) -> list[str]:
    return [c.text for c in calls if isinstance(c, SendMessage) and c.chat_id == chat_id]


def _photos_to(calls, chat_id: int) -> list[SendPhoto]:
    return [c for c in calls if isinstance(c, SendPhoto) and c.chat_id == chat_id]


def _photo_reply(harness, admin, reply_to, caption: str | None) -> Update:
    update = harness.updates.photo(admin, png_of(8, 8), caption=caption)
    body = update.model_dump(mode="json", exclude_none=True)
    body["message"]["reply_to_message"] = reply_to.model_dump(mode="json", exclude_none=True)
    return Update.model_validate(body, context={"bot": harness.bot})


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_replayed_paysupport_update_reaches_the_admins_once(harness, lang):
    uid = 7101 if lang == "en" else 7102
    ann = harness.user(uid, "Ann", language_code=lang, username=f"ann_{lang}")
    admin = harness.user(ADMIN_ID, "Boss")
    await harness.send(admin, "/start")
    await harness.send(ann, "/start")
    update = harness.updates.message(ann, "/paysupport paid 50 Stars, no ⭐")
    first = await harness.feed(update)
    again = await harness.feed(update)  # the inbox handing the same update over again
    assert len(_messages_to(first, ADMIN_ID)) == 1
    assert _messages_to(again, ADMIN_ID) == []
    # The user hears the same as the first time: their message is with support.
    assert _messages_to(again, uid) == [tr(lang, "paysupport_sent")]
    [stored] = await harness.rows(schema.support_messages, user_id=uid)
    assert (stored["text"], stored["chat_id"]) == ("paid 50 Stars, no ⭐", uid)
    # A new message with the same words is a new message.
    await harness.send(ann, "/paysupport paid 50 Stars, no ⭐")
    assert len(await harness.rows(schema.support_messages, user_id=uid)) == 2


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_an_admins_photo_reply_reaches_the_user_once(harness, lang):
    uid = 7111 if lang == "en" else 7112
    ann = harness.user(uid, "Ann", language_code=lang)
    admin = harness.user(ADMIN_ID, "Boss")
    await harness.send(admin, "/start")
    await harness.send(ann, "/start")
    await harness.send(ann, "/paysupport where are my stars?")
    forwarded = harness.screen(admin)

    reply = _photo_reply(harness, admin, forwarded, "Here is your receipt")
    calls = await harness.feed(reply)
    [photo] = _photos_to(calls, uid)
    assert photo.caption == tr(lang, "support_answer", text="Here is your receipt")
    assert _messages_to(calls, ADMIN_ID) == [tr("en", "adm_support_reply_sent", user_id=uid)]
    again = await harness.feed(reply)
    assert _photos_to(again, uid) == []
    assert _messages_to(again, ADMIN_ID) == [tr("en", "adm_support_reply_dup", user_id=uid)]

    bare = await harness.feed(_photo_reply(harness, admin, forwarded, None))
    [photo] = _photos_to(bare, uid)
    assert photo.caption == tr(lang, "support_answer_photo")
