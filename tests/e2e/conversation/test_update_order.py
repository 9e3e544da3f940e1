"""One chat's updates are handled one at a time, in the order Telegram numbered them, even
when Telegram delivers them at once (a button press and a message travel in different webhook
queues); different chats are not made to wait for each other."""

from __future__ import annotations

import asyncio

from tests.e2e.conversation.conftest import ledger, seen, start_image_flow, wait_media


def _record_order(stack) -> list[tuple[str, int]]:
    """(enter|exit, update_id) for every update the dispatcher handles, in order."""
    events: list[tuple[str, int]] = []
    dispatcher = stack.app.dispatcher
    feed = dispatcher.feed_update

    async def recorded(bot, update, **kwargs):
        events.append(("enter", update.update_id))
        try:
            return await feed(bot, update, **kwargs)
        finally:
            events.append(("exit", update.update_id))

    dispatcher.feed_update = recorded
    return events


async def test_a_generate_tap_and_a_start_pushed_together_are_both_handled_in_order(
        webhook_stack):
    stack = webhook_stack
    ann = stack.telegram.user(3101, first_name="Ann")
    generate = await start_image_flow(ann)
    events = _record_order(stack)
    before = len(stack.telegram.updates.delivered)

    # The tap, and /start right behind it, before the bot has handled either.
    pressed = asyncio.create_task(ann.tap(generate))
    await asyncio.sleep(0)  # let the tap be queued first (it is emitted when the task starts)
    await ann.send_command("/start")
    answer = await pressed

    assert answer.answered and answer.text is None  # not "this menu has expired"
    await seen(ann, "Pick a section")
    await wait_media(ann, 1)
    await stack.settle()
    # Delivered concurrently (a button press and a message travel in different queues), so
    # told apart by kind, not by the order their deliveries finished.
    later = stack.telegram.updates.delivered[before:]
    tap_id = next(u["update_id"] for u in later if "callback_query" in u)
    start_id = next(u["update_id"] for u in later if "message" in u)
    assert tap_id < start_id
    assert events.index(("exit", tap_id)) < events.index(("enter", start_id))
    assert await ledger(stack, 3101) == [("signup_bonus", 50), ("spend", -8)]
    assert not any("expired" in e.text for e in ann.transcript if e.from_bot)


async def test_a_slow_chat_does_not_hold_up_the_others(webhook_stack):
    stack = webhook_stack
    slow, quick = stack.telegram.user(3102, first_name="Slow"), stack.telegram.user(3103)
    await slow.send_command("/start")
    await seen(slow, "Pick a section")
    await quick.send_command("/start")
    await seen(quick, "Pick a section")
    # Slow's next reply is held at Telegram, mid-handler; Quick's chat goes on meanwhile.
    stack.telegram.faults.hold({"sendMessage"})
    await slow.send_command("/help")
    await _until(lambda: any(c.method == "sendMessage" for c in stack.telegram.calls_in_progress))
    stack.telegram.faults.hold_methods = set()  # only the call already waiting stays held
    await quick.send_command("/balance")
    await seen(quick, "Recent operations")
    assert any(c.method == "sendMessage" and str(c.params.get("chat_id")) == "3102"
               for c in stack.telegram.calls_in_progress)
    stack.telegram.faults.release()
    await stack.settle()


async def _until(predicate, timeout: float = 30.0) -> None:
    from tests.conftest import wait_until

    await wait_until(predicate, timeout=timeout)
