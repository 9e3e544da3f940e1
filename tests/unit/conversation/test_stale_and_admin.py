"""Old or forged buttons, and the admin commands nobody else can see."""

from __future__ import annotations

from aiogram.methods import SendMessage

from handlers.texts import tr
from storage import schema
from testkit.mocked_bot import button_rows
from tests.unit.conversation.conftest import (
    ADMIN_ID,
    SIGNUP_BONUS,
    answer_of,
    seedream_buttons,
    texts,
    to_card,
)

EXPIRED = tr("en", "expired")
FRESH_MENU = EXPIRED + "\n\n" + tr("en", "main_menu", balance=SIGNUP_BONUS)


def assert_expired_with_fresh_menu(calls) -> None:
    assert answer_of(calls).text == EXPIRED
    [menu] = [c for c in calls if isinstance(c, SendMessage)]
    assert menu.text == FRESH_MENU
    assert button_rows(menu.reply_markup)[0] == [tr("en", "job_create_image"), tr("en", "job_edit_photo")]


async def test_a_forged_button_answers_expired_with_a_fresh_menu(harness):
    ann = harness.user(5001)
    await harness.send(ann, "/start")
    menu = harness.screen(ann)
    for data in ("garbage", "f:not-a-number:go", "p:no_such_model:0"):
        assert_expired_with_fresh_menu(
            await harness.feed(harness.updates.callback(ann, data, message=menu)))
    assert await harness.ledger(5001) == [("signup_bonus", SIGNUP_BONUS)]


async def test_generate_on_an_older_card_is_expired_and_charges_nothing(harness):
    ann = harness.user(5002)
    old_card = await to_card(harness, ann, "the first idea")
    await to_card(harness, ann, "a better idea")  # a new draft: the old card is out of date

    calls = await harness.press(ann, seedream_buttons("en")["generate"], message=old_card)
    assert_expired_with_fresh_menu(calls)
    assert await harness.generations(5002) == []
    assert await harness.ledger(5002) == [("signup_bonus", SIGNUP_BONUS)]


async def test_admin_commands_do_not_exist_for_other_users(harness):
    bob = harness.user(5003, "Bob")
    await harness.send(bob, "/start")
    for command in ("/credit 5003 +500", "/user 5003", "/stats", "/refund ch-1",
                    "/ledgercheck", "/selftest"):
        assert texts(await harness.send(bob, command)) == [tr("en", "unknown_command")], command
    assert await harness.ledger(5003) == [("signup_bonus", SIGNUP_BONUS)]


async def test_an_admin_credits_a_user_who_is_told(harness):
    bob, admin = harness.user(5004, "Bob", language_code="ru"), harness.user(ADMIN_ID, "Root")
    await harness.send(bob, "/start")

    calls = await harness.send(admin, "/credit 5004 +25 for the contest")
    assert [(c.chat_id, c.text) for c in calls if isinstance(c, SendMessage)] == [
        (ADMIN_ID, tr("en", "adm_credit_done", user_id=5004, balance=SIGNUP_BONUS + 25,
                      old=SIGNUP_BONUS)),
        (5004, tr("ru", "adm_credit_notice", delta="+25", note=" (for the contest)",
                  balance=SIGNUP_BONUS + 25))]
    assert texts(await harness.send(admin, "/credit 5004 +x")) == [
        tr("en", "adm_err_bad_amount") + "\n" + tr("en", "adm_credit_usage")]

    assert await harness.ledger(5004) == [("signup_bonus", SIGNUP_BONUS), ("admin_adjust", 25)]
    [_, adjust] = await harness.rows(schema.credit_ledger, user_id=5004)
    assert (adjust["admin_id"], adjust["note"]) == (ADMIN_ID, "for the contest")


async def test_the_same_credit_update_twice_and_at_once_moves_money_once(harness):
    """Telegram redelivers, and the inbox replays an update whose process died mid-handler:
    the /credit keyed by its message writes one ledger row whatever happens."""
    import asyncio

    bob, admin = harness.user(5005, "Bob"), harness.user(ADMIN_ID, "Root")
    await harness.send(bob, "/start")
    update = harness.updates.message(admin, "/credit 5005 +7")

    first = await harness.feed(update)
    assert (5005, tr("en", "adm_credit_notice", delta="+7", note="",
                     balance=SIGNUP_BONUS + 7)) in [
        (c.chat_id, c.text) for c in first if isinstance(c, SendMessage)]
    again = await harness.feed(update)
    # The replay tells the admin the balance as it is, and the user nothing new.
    assert [(c.chat_id, c.text) for c in again if isinstance(c, SendMessage)] == [
        (ADMIN_ID, tr("en", "adm_credit_done", user_id=5005, balance=SIGNUP_BONUS + 7,
                      old=SIGNUP_BONUS + 7))]
    await asyncio.gather(*(harness.feed(update) for _ in range(4)))
    other = harness.updates.message(admin, "/credit 5005 +7")  # a new message: a new change
    await asyncio.gather(harness.feed(other), harness.feed(other))

    assert await harness.ledger(5005) == [("signup_bonus", SIGNUP_BONUS), ("admin_adjust", 7),
                                          ("admin_adjust", 7)]
    assert await harness.repository.ledger_check() == []
