"""Integers past 64 bits (or past what a field can mean) in button data or admin arguments: the
expired-menu answer or a clear refusal, never "Something went wrong"."""

from __future__ import annotations

import pytest

from handlers.texts import tr
from tests.unit.conversation.conftest import ADMIN_ID, SIGNUP_BONUS, texts
from tests.unit.conversation.test_stale_and_admin import assert_expired_with_fresh_menu

HUGE = str(2**64 + 5)


@pytest.mark.parametrize("data", [
    f"g:doc:{HUGE}", f"g:x:{HUGE}", f"g:again:{HUGE}", f"g:anim:{HUGE}", f"g:show:{HUGE}",
    f"g:doc:-{HUGE}", f"l:{HUGE}", f"l:{2**40}", f"t:{HUGE}:{HUGE}", f"p:seedream_45_edit:{HUGE}",
    f"f:{HUGE}:go", f"o:{HUGE}:0:0", f"o:0:{HUGE}:{HUGE}",
])
async def test_huge_numbers_in_button_data_are_an_expired_menu(harness, data):
    ann = harness.user(5101)
    await harness.send(ann, "/start")
    menu = harness.screen(ann)
    assert_expired_with_fresh_menu(await harness.feed(harness.updates.callback(ann, data, message=menu)))
    assert await harness.ledger(5101) == [("signup_bonus", SIGNUP_BONUS)]


NO_USER = tr("en", "adm_err_no_user", who=HUGE) + "\n" + tr("en", "adm_credit_usage")
TOO_LARGE = tr("en", "adm_err_amount_range") + "\n" + tr("en", "adm_credit_usage")


@pytest.mark.parametrize(("command", "reply"), [
    (f"/credit {HUGE} +5", NO_USER),
    (f"/credit -{HUGE} +5", NO_USER.replace(HUGE, "-" + HUGE)),
    (f"/credit @{'a' * 300} +5", NO_USER.replace(HUGE, "@" + "a" * 300)),
    (f"/credit 5102 +{HUGE}", TOO_LARGE),
    (f"/credit 5102 -{HUGE}", TOO_LARGE),
    (f"/credit 5102 ={HUGE}", TOO_LARGE),
    (f"/credit 5102 +{'9' * 5000}", TOO_LARGE),  # past Python's int-from-text limit too
    (f"/credit 5102 +{2**31}", TOO_LARGE),
    (f"/user {HUGE}", tr("en", "adm_no_user", who=HUGE)),
    (f"/user -{HUGE}", tr("en", "adm_no_user", who="-" + HUGE)),
    (f"/user @{'b' * 300}", tr("en", "adm_no_user", who="@" + "b" * 300)),
    (f"/refund {'9' * 300}", tr("en", "adm_refund_unknown", charge="9" * 300)),
])
async def test_huge_numbers_in_admin_arguments_are_refused_clearly(harness, command, reply):
    ann, admin = harness.user(5102), harness.user(ADMIN_ID, "Boss")
    await harness.send(ann, "/start")
    await harness.send(admin, "/start")
    assert texts(await harness.send(admin, command)) == [reply]
    assert await harness.ledger(5102) == [("signup_bonus", SIGNUP_BONUS)]
