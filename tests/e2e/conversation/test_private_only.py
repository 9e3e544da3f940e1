"""Groups and channels: nothing there registers a user or earns the signup bonus."""

from __future__ import annotations

import time

from handlers.callbacks import MenuAction, MenuCb
from tests.e2e.conversation.conftest import seen

GUS = {"id": 7001, "is_bot": False, "first_name": "Gus", "language_code": "en"}
GROUP = {"id": -1007001, "type": "supergroup", "title": "friends"}


async def test_group_messages_and_buttons_do_not_register_anyone(webhook_stack):
    tg = webhook_stack.telegram
    group_message = {"message_id": 5, "date": int(time.time()), "chat": GROUP, "from": GUS,
                     "text": "/start"}
    tg.updates.add({"message": {**group_message, "text": "a cat in a hat"}})
    tg.updates.add({"message": group_message})
    tg.updates.add({"callback_query": {"id": "g1", "from": GUS, "chat_instance": "c1",
                                       "message": group_message,
                                       "data": MenuCb(action=MenuAction.IMAGES).pack()}})
    # A private round trip from someone else after them: by then the group updates were handled.
    bea = tg.user(7002, first_name="Bea", language_code="en")
    await bea.send_command("/start")
    await seen(bea, "Welcome gift")
    await webhook_stack.settle()  # every update delivered and handled
    assert await webhook_stack.app.accounts.get_user(7001) is None

    gus = tg.user(7001, first_name="Gus", language_code="en")
    await gus.send_command("/start")
    await seen(gus, "Welcome gift: 50⭐")  # first contact in private: the bonus, once
    assert await webhook_stack.app.accounts.balance(7001) == 50
