"""/balance, top-up packs, the Stars invoice, pre-checkout and crediting once per charge id."""

from __future__ import annotations

from aiogram.methods import AnswerPreCheckoutQuery, SendInvoice, SendMessage

from handlers.texts import tr
from storage import schema
from testkit.mocked_bot import button_rows
from tests.unit.conversation.conftest import ADMIN_ID, SIGNUP_BONUS, texts

PACK_ROWS = [[tr("en", "pack_button", stars=50, credits=50)],
             [tr("en", "pack_button", stars=150, credits=165)],
             [tr("en", "pack_button", stars=500, credits=600)],
             [tr("en", "btn_menu")]]


def ledger_line(entry, reason: str) -> str:
    return tr("en", "ledger_line", date=entry.created_at.strftime("%d.%m %H:%M"),
              delta=f"{entry.delta:+d}", reason=reason)


async def test_balance_shows_ledger_lines_and_the_packs(harness):
    ann = harness.user(3001)
    await harness.send(ann, "/start")
    await harness.repository.admin_adjust(3001, -20, admin_id=ADMIN_ID, note="test")
    newest, oldest = await harness.repository.ledger(3001, limit=5)

    calls = await harness.send(ann, "/balance")
    lines = "\n".join([ledger_line(newest, tr("en", "reason_admin_adjust")),
                       ledger_line(oldest, tr("en", "reason_signup_bonus"))])
    assert texts(calls) == [tr("en", "balance", balance=SIGNUP_BONUS - 20, lines=lines)]
    assert button_rows(calls[0].reply_markup) == [
        [tr("en", "btn_topup")], [tr("en", "btn_invite"), tr("en", "btn_promo")],
        [tr("en", "btn_menu")]]

    calls = await harness.press(ann, tr("en", "btn_topup"))
    [packs] = [c for c in calls if isinstance(c, SendMessage)]
    assert packs.text == tr("en", "topup_choose") and button_rows(packs.reply_markup) == PACK_ROWS


async def test_a_pack_button_sends_a_stars_invoice_naming_the_pack(harness):
    ann = harness.user(3002)
    await harness.send(ann, "/topup")
    calls = await harness.press(ann, tr("en", "pack_button", stars=150, credits=165))
    [invoice] = [c for c in calls if isinstance(c, SendInvoice)]
    assert (invoice.chat_id, invoice.payload, invoice.currency) == (3002, "pack:150:165:v1", "XTR")
    assert [(p.label, p.amount) for p in invoice.prices] == [
        (tr("en", "invoice_label", credits=165), 150)]
    assert invoice.title == tr("en", "invoice_title", credits=165, bot="kiebot")  # MockedBot's getMe
    assert harness.screen(ann).invoice.total_amount == 150
    assert await harness.rows(schema.payments, user_id=3002) == []  # nothing until it is paid


async def test_pre_checkout_accepts_a_pack_on_sale_and_refuses_a_stale_one(harness):
    ann = harness.user(3003)
    cases = [("pack:150:165:v1", 150, True),   # on sale
             ("pack:150:999:v1", 150, False),  # a pack from an older configuration
             ("pack:50:50:v1", 49, False),     # the amount does not match the pack
             ("order-1", 50, False)]           # not ours at all
    for payload, amount, ok in cases:
        calls = await harness.feed(harness.updates.pre_checkout(ann, payload=payload,
                                                                total_amount=amount))
        [answer] = calls
        assert isinstance(answer, AnswerPreCheckoutQuery)
        assert answer.ok is ok, payload
        assert answer.error_message == (None if ok else tr("en", "precheckout_stale"))
    assert await harness.ledger(3003) == [("signup_bonus", SIGNUP_BONUS)]


async def test_a_successful_payment_is_credited_once_per_charge_id(harness):
    ann = harness.user(3004)
    paid = dict(payload="pack:150:165:v1", total_amount=150)
    first = await harness.feed(harness.updates.successful_payment(ann, charge_id="ch-1", **paid))
    replayed = await harness.feed(harness.updates.successful_payment(ann, charge_id="ch-1", **paid))
    other = await harness.feed(harness.updates.successful_payment(ann, charge_id="ch-2", **paid))

    assert texts(first) == [tr("en", "paid", credits=165, balance=SIGNUP_BONUS + 165)]
    assert button_rows(first[0].reply_markup)[0] == [tr("en", "job_create_image"), tr("en", "job_edit_photo")]
    assert texts(replayed) == [tr("en", "paid_again", balance=SIGNUP_BONUS + 165)]
    assert texts(other) == [tr("en", "paid", credits=165, balance=SIGNUP_BONUS + 330)]
    assert await harness.ledger(3004) == [
        ("signup_bonus", SIGNUP_BONUS), ("purchase", 165), ("purchase", 165)]
    charges = [p["telegram_payment_charge_id"] for p in await harness.rows(schema.payments,
                                                                           user_id=3004)]
    assert charges == ["ch-1", "ch-2"]
    assert await harness.repository.ledger_check() == []
