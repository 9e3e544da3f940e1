"""Support through the real app: a /paysupport update the inbox hands over again (as after a
crash) reaches the admins once; an admin's photo reply to the copy reaches the user, captioned
in the user's language."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from handlers.texts import tr
from storage.schema import updates_inbox
from tests.e2e.conversation.conftest import ADMIN_ID, png_bytes, seen


def _forwards(admin, needle: str) -> list:
    return [e for e in admin.transcript if e.from_bot and needle in e.text]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_replayed_paysupport_reaches_the_admin_once(webhook_stack, lang):
    stack, tg = webhook_stack, webhook_stack.telegram
    admin = tg.user(ADMIN_ID, first_name="Root", language_code="en")
    pat = tg.user(5400, first_name="Pat", language_code=lang)
    asked = await pat.send_command("/paysupport", "no ⭐ after paying")
    await seen(pat, tr(lang, "paysupport_sent"))
    await seen(admin, "no ⭐ after paying")
    await stack.settle()
    # The inbox hands the same update over again (a process died before marking it handled).
    async with stack.app.engine.begin() as conn:
        rows = (await conn.execute(sa.select(updates_inbox.c.update_id, updates_inbox.c.payload)
                                   )).all()
        [update_id] = [u for u, p in rows
                       if json.loads(p).get("message", {}).get("message_id") == asked.message_id
                       and json.loads(p)["message"]["chat"]["id"] == 5400]
        await conn.execute(sa.update(updates_inbox).where(updates_inbox.c.update_id == update_id)
                           .values(handled_at=None, lease_owner=None, lease_until=None))
    stack.app.drainer.wake()
    await pat.wait_until(lambda t: len([e for e in t if e.from_bot
                                        and e.text == tr(lang, "paysupport_sent")]) == 2)
    await stack.settle()
    assert len(_forwards(admin, "no ⭐ after paying")) == 1
    assert len(await stack.app.repository.support_messages_of(5400)) == 1


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_an_admins_photo_reply_reaches_the_user(webhook_stack, lang):
    tg = webhook_stack.telegram
    admin = tg.user(ADMIN_ID, first_name="Root", language_code="en")
    pat = tg.user(5500, first_name="Pat", language_code=lang)
    await pat.send_command("/paysupport", "where is my video?")
    copy = await seen(admin, "where is my video?")
    await admin.send_photo(png_bytes(), caption="Here it is", reply_to=copy)
    answer = await seen(pat, tr(lang, "support_answer", text="Here it is"))
    assert answer.kind == "photo" and answer.media
    await seen(admin, tr("en", "adm_support_reply_sent", user_id=5500))
