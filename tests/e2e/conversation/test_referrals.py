"""Referrals, promo codes and the daily free allowance through the real app, the fake Telegram and
the KIE emulator: an invite link → the friend's first purchase pays both bonuses once (replayed
payment updates, reconciliation and a second purchase included), the share and its refund, /ref's
figures; promo codes redeemed once per user and never past their uses; today's free generation."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest

from testkit.stack import LocalStack
from tests.e2e.conversation.conftest import (
    ADMIN_ID,
    balance,
    click,
    ledger,
    seen,
    start_image_flow,
    wait_media,
)
from tests.e2e.conversation.test_payments_recovery import LATER, buy, failing_credit

# Defaults: REFERRAL_BONUS=25, REFERRAL_SHARE_PERCENT=5; the conversation stack's SIGNUP_BONUS=50.
T = {
    "en": {"ref": "Your link:", "welcome": "You came by a friend's invitation", "paid": "Payment received",
           "figures": "Invited: {0} · paid: {1} · earned: {2}⭐", "again": "already credited"},
    "ru": {"ref": "Ваша ссылка:", "welcome": "Вы пришли по приглашению друга", "paid": "Оплата получена",
           "figures": "Приглашено: {0} · оплатили: {1} · заработано: {2}⭐", "again": "уже зачислен"},
}


async def invite_payload(user) -> str:
    await user.send_command("/ref")
    screen = await seen(user, "?start=ref_")
    return re.search(r"\?start=(ref_[0-9a-z]+)", screen.text).group(1)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_invite_then_first_purchase_pays_both_once_and_a_share_of_each(webhook_stack, lang):
    stack, t = webhook_stack, T[lang]
    base = 7000 + 10 * (lang == "ru")
    ivy = stack.telegram.user(base, first_name="Ivy", language_code=lang)
    fred = stack.telegram.user(base + 1, first_name="Fred", language_code=lang)
    payload = await invite_payload(ivy)
    await seen(ivy, t["figures"].format(0, 0, 0))

    await fred.send_command("/start", payload)
    await seen(fred, t["welcome"])
    # Signing up alone pays no referral bonus.
    assert await ledger(stack, base) == [("signup_bonus", 50)]
    assert await ledger(stack, base + 1) == [("signup_bonus", 50)]

    outcome = await buy(fred, lang)
    await seen(fred, t["paid"])
    paid = outcome.message.raw["successful_payment"]
    for _ in range(3):  # Telegram delivers the same payment again
        fred._post({"successful_payment": paid})
    await fred.wait_until(lambda tr: sum(t["again"] in e.text for e in tr if e.from_bot) == 3)
    assert await stack.app.reconciler.run(now=datetime.now(UTC) + LATER) == 0
    assert await ledger(stack, base + 1) == [("signup_bonus", 50), ("purchase", 165),
                                             ("referral_bonus", 25)]
    assert await ledger(stack, base) == [("signup_bonus", 50), ("referral_bonus", 25),
                                         ("referral_share", 8)]

    # A second purchase: the share again, no second bonus.
    await buy(fred, lang)
    # (the first receipt's menu led to this purchase, so its text is now the balance screen)
    await seen(fred, "405⭐")
    assert await balance(stack, base) == 50 + 25 + 8 + 8
    assert await balance(stack, base + 1) == 50 + 165 + 25 + 165
    await ivy.send_command("/ref")
    await seen(ivy, t["figures"].format(1, 1, 41))
    assert await stack.app.repository.ledger_check() == []


async def test_reconciliation_pays_the_bonuses_once_when_the_handler_could_not(
        webhook_stack, monkeypatch):
    stack = webhook_stack
    ivy = stack.telegram.user(7100, first_name="Ivy", language_code="en")
    fred = stack.telegram.user(7101, first_name="Fred", language_code="en")
    payload = await invite_payload(ivy)
    await fred.send_command("/start", payload)
    await seen(fred, "friend's invitation")
    failing_credit(stack, monkeypatch, failures=3)  # every attempt of the handler fails
    outcome = await buy(fred)
    await seen(fred, "Please don't pay again")
    assert await balance(stack, 7101) == 50
    later = datetime.now(UTC) + LATER
    # Two reconciliation passes at once (two workers) and the payment update delivered again.
    fred._post({"successful_payment": outcome.message.raw["successful_payment"]})
    passes = await asyncio.gather(stack.app.reconciler.run(now=later),
                                  stack.app.reconciler.run(now=later))
    await fred.wait_until(lambda tr: any(("already credited" in e.text or "Payment received" in e.text)
                                         for e in tr if e.from_bot))
    assert sum(passes) <= 1
    assert await stack.app.reconciler.run(now=later) == 0
    assert await ledger(stack, 7101) == [("signup_bonus", 50), ("purchase", 165),
                                         ("referral_bonus", 25)]
    assert await ledger(stack, 7100) == [("signup_bonus", 50), ("referral_bonus", 25),
                                         ("referral_share", 8)]


async def test_refund_of_the_first_purchase_takes_back_the_bonuses_and_share(webhook_stack):
    stack = webhook_stack
    admin = stack.telegram.user(ADMIN_ID, first_name="Root", language_code="en")
    ivy = stack.telegram.user(7200, first_name="Ivy", language_code="en")
    fred = stack.telegram.user(7201, first_name="Fred", language_code="en")
    await fred.send_command("/start", await invite_payload(ivy))
    outcome = await buy(fred)
    await seen(fred, "Payment received")
    await admin.send_command("/refund", outcome.charge_id)
    await seen(admin, "Refunded 150 Telegram Stars to 7201")
    assert await balance(stack, 7200) == 50
    assert await balance(stack, 7201) == 50
    assert (await ledger(stack, 7200))[-2:] == [("referral_share", -8), ("referral_bonus", -25)]
    assert await stack.app.repository.ledger_check() == []


async def test_self_invites_and_existing_users_earn_nothing(webhook_stack):
    stack = webhook_stack
    ivy = stack.telegram.user(7300, first_name="Ivy", language_code="en")
    old = stack.telegram.user(7301, first_name="Old", language_code="en")
    payload = await invite_payload(ivy)
    await old.send_command("/start")
    await seen(old, "Pick a section")
    await old.send_command("/start", payload)  # an existing user follows the link later
    await ivy.send_command("/start", payload)  # the inviter follows their own link
    await buy(old)
    await seen(old, "Payment received")
    assert await ledger(stack, 7300) == [("signup_bonus", 50)]
    assert await ledger(stack, 7301) == [("signup_bonus", 50), ("purchase", 165)]
    assert not any("friend's invitation" in e.text for e in old.transcript if e.from_bot)


PROMO = {
    "en": {"ok": "Promo code SPRING: +40⭐. Balance: 90⭐", "already": "already used the promo code SPRING",
           "unknown": "There is no promo code NOPE", "expired": "The promo code OLD has expired",
           "used_up": "The promo code SPRING has been used up", "off": "SPRING is no longer active",
           "ask": "Send the promo code", "button": "🎟 Promo code", "balance": "💰 Balance"},
    "ru": {"ok": "Промокод SPRING: +40⭐. Баланс: 90⭐", "already": "Вы уже использовали промокод SPRING",
           "unknown": "Промокода NOPE нет", "expired": "Срок действия промокода OLD истёк",
           "used_up": "Промокод SPRING уже израсходован", "off": "Промокод SPRING больше не действует",
           "ask": "Отправьте промокод", "button": "🎟 Промокод", "balance": "💰 Баланс"},
}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_promo_codes_once_per_user_within_uses_with_polite_refusals(webhook_stack, lang):
    stack, t = webhook_stack, PROMO[lang]
    base = 7400 + 10 * (lang == "ru")
    admin = stack.telegram.user(ADMIN_ID, first_name="Root", language_code="en")
    await admin.send_command("/promo_new", "spring 40 2 30")
    await seen(admin, "?start=promo_SPRING")
    await admin.send_command("/promo_new", "OLD 10 5 1")
    await seen(admin, "Promo code OLD")
    await admin.send_command("/promo_new", "bad")
    await seen(admin, "Usage: /promo_new")
    await stack.app.repository.create_promo(  # created yesterday for a day: over now
        "OLD2", credits=5, max_uses=5, expires_at=datetime.now(UTC) - timedelta(hours=1),
        admin_id=ADMIN_ID)

    ann = stack.telegram.user(base, first_name="Ann", language_code=lang)
    await ann.send_command("/promo", "spring")
    await seen(ann, t["ok"])
    await ann.send_command("/promo", "SPRING")
    await seen(ann, t["already"])
    await ann.send_command("/promo", "nope")
    await seen(ann, t["unknown"])
    await ann.send_command("/promo", "OLD2")
    await seen(ann, t["expired"].replace("OLD", "OLD2"))

    # The balance screen's button asks for the code; the typed code is redeemed.
    bob = stack.telegram.user(base + 1, first_name="Bob", language_code=lang)
    await bob.send_command("/start")
    await click(bob, t["balance"])
    await click(bob, t["button"])
    await seen(bob, t["ask"])
    await bob.send_text("Spring")
    await seen(bob, t["ok"])

    # Two uses only: a deep link for a third user finds it used up, politely.
    cid = stack.telegram.user(base + 2, first_name="Cid", language_code=lang)
    await cid.send_command("/start", "promo_SPRING")
    await seen(cid, t["used_up"])
    await admin.send_command("/promo_off", "SPRING")
    await seen(admin, "Promo code SPRING is now off")
    await cid.send_command("/promo", "spring")
    await seen(cid, t["off"])
    await admin.send_command("/promos")
    listing = await seen(admin, "• SPRING · 40⭐ · used 2/2 · off")
    assert "• OLD2 · 5⭐ · used 0/5 · expired" in listing.text
    assert await ledger(stack, base) == [("signup_bonus", 50), ("promo", 40)]
    assert await ledger(stack, base + 2) == [("signup_bonus", 50)]
    assert not any("Traceback" in e.text for e in ann.transcript + cid.transcript)
    assert await stack.app.repository.ledger_check() == []


async def test_concurrent_redemptions_never_exceed_the_uses(webhook_stack):
    stack = webhook_stack
    admin = stack.telegram.user(ADMIN_ID, first_name="Root", language_code="en")
    await admin.send_command("/promo_new", "RUSH 10 4")
    await seen(admin, "Promo code RUSH")
    users = [stack.telegram.user(7500 + i, first_name=f"U{i}", language_code="en")
             for i in range(12)]
    for user in users:  # registered first, so only the promo races
        await user.send_command("/start")
        await seen(user, "Pick a section")
    await asyncio.gather(*(user.send_command("/promo", "rush") for user in users for _ in range(2)))
    for user in users:
        await user.wait_until(lambda tr: sum("RUSH" in e.text for e in tr if e.from_bot) == 2)
    credited = [u for u in users if await balance(stack, u.id) == 60]
    assert len(credited) == 4
    assert [await balance(stack, u.id) for u in users if u not in credited] == [50] * 8
    [rush] = [p for p in await stack.app.repository.list_promos() if p.code == "RUSH"]
    assert rush.used == 4
    assert await stack.app.repository.ledger_check() == []


FREE = {"en": ("🎁 free today", "Free today: this one costs you nothing", "nothing was charged"),
        "ru": ("🎁 сегодня бесплатно", "Сегодня бесплатно: эта генерация ничего не стоит",
               "ничего не списано")}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_daily_free_generation_once_a_day_under_triple_taps(tmp_path, lang):
    mark, card, charged = FREE[lang]
    async with LocalStack(tmp_path, webhook=True, telegram_options={"chat_burst": 30},
                          settings={"ADMIN_IDS": str(ADMIN_ID), "SIGNUP_BONUS": "50",
                                    "DAILY_FREE_GENERATIONS": "1",
                                    "DAILY_FREE_MODEL": "seedream_45_t2i"}) as stack:
        uid = 7600 + (lang == "ru")
        ann = stack.telegram.user(uid, first_name="Ann", language_code=lang)
        await ann.send_command("/start")
        await click(ann, {"en": "🎨 Create an image", "ru": "🎨 Создать картинку"}[lang])
        await seen(ann, "Seedream 4.5")
        picker = await seen(ann, mark)
        assert mark in next(line for line in picker.text.splitlines() if "Seedream 4.5" in line)
        stack.kie.faults.fail_next = 1  # the first free run fails at KIE: the use comes back
        generate = await start_image_flow(ann, lang, "a red fox")
        await seen(ann, card)
        answers = await asyncio.gather(*(ann.tap(generate) for _ in range(3)))
        assert sum(charged in (a.text or "") for a in answers) == 1
        await seen(ann, "❌ Seedream 4.5")
        assert await stack.app.generations.free_left(uid) == 1
        generate = await start_image_flow(ann, lang, "a red fox")
        await seen(ann, card)
        answers = await asyncio.gather(*(ann.tap(generate) for _ in range(3)))
        assert sum(charged in (a.text or "") for a in answers) == 1
        await wait_media(ann, 1)
        assert await ledger(stack, uid) == [("signup_bonus", 50)]
        # The next generation today costs its price, and its card no longer says free.
        generate = await start_image_flow(ann, lang, "a blue fox")
        cards = [e for e in ann.transcript if e.from_bot and generate in str(e.buttons)]
        assert cards and card not in cards[-1].text
        await ann.tap(generate)
        await wait_media(ann, 2)
        assert await ledger(stack, uid) == [("signup_bonus", 50), ("spend", -8)]
        assert await stack.app.generations.free_left(uid) == 0


GIFT = {"en": "Welcome gift: 50⭐", "ru": "Подарок"}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_signup_bonus_only_by_invitation_when_the_guard_is_on(tmp_path, lang):
    async with LocalStack(tmp_path, webhook=True, telegram_options={"chat_burst": 30},
                          settings={"ADMIN_IDS": str(ADMIN_ID), "SIGNUP_BONUS": "50",
                                    "SIGNUP_BONUS_INVITED_ONLY": "true"}) as stack:
        base = 7700 + 10 * (lang == "ru")
        ivy = stack.telegram.user(base, first_name="Ivy", language_code=lang)
        payload = await invite_payload(ivy)
        stray = stack.telegram.user(base + 1, first_name="Stray", language_code=lang)
        await stray.send_command("/start")
        await stray.wait_for_message(lambda m: m.buttons)
        assert not any(GIFT[lang] in e.text for e in stray.transcript if e.from_bot)
        fred = stack.telegram.user(base + 2, first_name="Fred", language_code=lang)
        await fred.send_command("/start", payload)
        await seen(fred, GIFT[lang])
        assert await ledger(stack, base + 1) == []
        assert await ledger(stack, base + 2) == [("signup_bonus", 50)]
        assert await ledger(stack, base) == []  # Ivy came without a link either
