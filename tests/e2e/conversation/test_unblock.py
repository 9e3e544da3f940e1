"""Users coming back. One who blocked the bot while a paid generation ran gets the result once
they return: by unblocking (my_chat_member) or simply by writing again; the status card is
finalised too. A deep-link payload from the first /start survives a restart."""

from __future__ import annotations

import pytest

from bot.services.pipeline.deliver import _elapsed
from testkit.stack import LocalStack
from testkit.kie.faults import StateDelays
from tests.conftest import wait_until
from tests.e2e.conversation.conftest import ADMIN_ID, click, media_messages, seen, start_image_flow

UID = 5100


@pytest.fixture
async def slow_stack(tmp_path):
    # Long enough in "generating" for the user to block the bot before the result is ready.
    async with LocalStack(tmp_path, webhook=True,
                          settings={"ADMIN_IDS": str(ADMIN_ID), "SIGNUP_BONUS": "50"},
                          emulator_options={"delays": StateDelays(0.2, None, 1.5)}) as s:
        yield s


async def generate_then_block(stack, ann, *, tell_bot: bool):
    """Tap Generate, then block; `tell_bot=False` blocks without the my_chat_member update
    (the bot only learns from a 403), as when that update was lost."""
    await click(ann, await start_image_flow(ann))
    repo = stack.app.repository
    g = await wait_until(lambda: _latest(repo), timeout=10)
    if tell_bot:
        ann.block()
    else:
        ann.chat.blocked = True

    async def stuck():
        row = await repo.get_generation(g.id)
        user = await repo.get_user(UID)
        return row if row.status == "succeeded" and user.blocked else None

    row = await wait_until(stuck, timeout=20)
    assert row.delivered_at is None and media_messages(ann) == []
    return row


async def _latest(repo):
    items = await repo.list_library(UID, limit=1, offset=0, statuses=("queued", "generating",
                                                                      "submit_unknown", "storing",
                                                                      "succeeded"))
    return items[0] if items else None


async def delivered(stack, ann, g):
    async def done():
        row = await stack.app.repository.get_generation(g.id)
        return row if row.delivered_at is not None else None

    row = await wait_until(done, timeout=20)
    await ann.wait_until(lambda t: len(media_messages(ann)) == 1, timeout=10)
    card_text = stack.app.presenter.status(row, language="en", position=None,
                                           elapsed_s=_elapsed(row)).text
    card = next(e for e in ann.transcript if e.message_id == row.progress_message_id)
    assert card.text == card_text  # the status card was finalised, not left "generating"
    return row


async def test_unblocking_delivers_the_waiting_result(slow_stack):
    stack = slow_stack
    ann = stack.telegram.user(UID, first_name="Ann", language_code="en")
    g = await generate_then_block(stack, ann, tell_bot=True)
    ann.unblock()  # my_chat_member: kicked → member
    await delivered(stack, ann, g)
    assert (await stack.app.repository.get_user(UID)).blocked is False
    assert await stack.app.accounts.balance(UID) == 50 - g.cost


async def test_writing_again_delivers_even_without_a_member_update(slow_stack):
    stack = slow_stack
    ann = stack.telegram.user(UID, first_name="Ann", language_code="en")
    g = await generate_then_block(stack, ann, tell_bot=False)
    ann.chat.blocked = False  # unblocked, but the bot never heard of it
    await ann.send_command("/start")
    await delivered(stack, ann, g)
    # and the next generation is delivered normally, charged once
    await click(ann, await start_image_flow(ann, prompt="a second lighthouse"))
    await ann.wait_until(lambda t: len(media_messages(ann)) == 2, timeout=20)
    assert await stack.app.accounts.balance(UID) == 50 - 2 * g.cost
    assert await stack.app.repository.ledger_check() == []


async def test_first_deep_link_payload_is_kept_across_restarts(webhook_stack):
    stack = webhook_stack
    ann = stack.telegram.user(5200, first_name="Ann", language_code="en")
    await ann.send_command("/start", "ref_42")
    await seen(ann, "Pick a section")
    assert (await stack.app.repository.get_user(5200)).start_payload == "ref_42"
    await stack.restart()  # no Redis: FSM data is gone, the user row is not
    await ann.send_command("/start", "campaign_7")
    await seen(ann, "Pick a section")
    await ann.send_command("/start")
    assert (await stack.app.repository.get_user(5200)).start_payload == "ref_42"
    bob = stack.telegram.user(5201, first_name="Bob", language_code="en")
    await bob.send_command("/start")
    await bob.send_command("/start", "late_link")
    await bob.wait_until(lambda t: sum(e.from_bot for e in t) >= 2, timeout=10)
    assert (await stack.app.repository.get_user(5201)).start_payload == "late_link"
