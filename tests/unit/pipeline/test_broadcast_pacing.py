"""A broadcast's messages go through the ChatSender as cosmetic calls: deliveries (urgent) that
queue for the global budget get their slots first, and a broadcast's message is exactly what
message_for builds (text, entities, the link button; a photo by file_id with its caption)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiogram.methods import SendMessage, SendPhoto

from bot.services.broadcast import message_for
from storage.repository import Broadcast
from tests.unit.pipeline.test_chat_sender import FakeClock, sender_for


def _broadcast(**kw) -> Broadcast:
    values = dict(id=1, admin_id=9, lang="en", kind="text", text="Hello", entities=None,
                  photo=None, button_text=None, button_url=None, segment="all",
                  segment_arg=None, state="running", card_message_id=5, total=0,
                  created_at=datetime(2026, 12, 2, tzinfo=UTC), started_at=None,
                  finished_at=None, reported_at=None)
    values.update(kw)
    return Broadcast(**values)


def test_the_message_is_the_admins_composition():
    text = message_for(7, _broadcast(entities=[{"type": "bold", "offset": 0, "length": 5}],
                                     button_text="Open", button_url="https://example.com/x"))
    assert isinstance(text, SendMessage) and text.chat_id == 7 and text.text == "Hello"
    assert [(e.type, e.offset, e.length) for e in text.entities] == [("bold", 0, 5)]
    [[button]] = text.reply_markup.inline_keyboard
    assert (button.text, button.url) == ("Open", "https://example.com/x")
    photo = message_for(8, _broadcast(kind="photo", photo="file-1", text=None))
    assert isinstance(photo, SendPhoto) and photo.photo == "file-1" and photo.caption is None
    assert photo.reply_markup is None


async def test_deliveries_overtake_a_broadcast_queued_for_the_global_budget():
    clock = FakeClock()
    sender, bot = sender_for(clock, global_per_second=2, global_margin=0.0)
    b = _broadcast()
    broadcast = [sender.send(100 + n, message_for(100 + n, b), cosmetic=True) for n in range(8)]
    deliveries = [sender.send(200 + n, SendPhoto(chat_id=200 + n, photo="x")) for n in range(4)]
    await asyncio.gather(*broadcast, *deliveries)
    order = ["delivery" if isinstance(m, SendPhoto) else "broadcast" for _, m in bot.calls]
    assert order.count("broadcast") == 8 and order.count("delivery") == 4
    last_delivery = max(i for i, kind in enumerate(order) if kind == "delivery")
    # Only the broadcast messages already holding or waiting on a slot when the deliveries
    # arrived go first (two in the window, one queued); the other five wait for them.
    assert order[:last_delivery + 1].count("broadcast") <= 3
    assert order[last_delivery + 1:] == ["broadcast"] * (8 - order[:last_delivery + 1].count("broadcast"))
