"""What admins and buyers see around the edges: the buyer is told of a refund, the invoice
carries the bot's own name, admins get a command menu and a /help of their own."""

from __future__ import annotations

import logging

import pytest
from aiogram.methods import GetMe, SendInvoice, SendMessage, SetMyCommands
from aiogram.types import BotCommandScopeChat

import handlers
from handlers.texts import tr
from tests.unit.conversation.conftest import ADMIN_ID, SIGNUP_BONUS, texts

PAID = {"payload": "pack:150:165:v1", "total_amount": 150}


def _sent_to(calls, chat_id: int) -> list[str]:
    return [c.text for c in calls if isinstance(c, SendMessage) and c.chat_id == chat_id]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_buyer_is_told_when_an_admin_refunds_their_purchase(harness, lang):
    uid = 6001 if lang == "en" else 6002
    ann, admin = harness.user(uid, language_code=lang), harness.user(ADMIN_ID, "Boss")
    await harness.send(ann, "/start")
    await harness.feed(harness.updates.successful_payment(ann, charge_id=f"ch-{uid}", **PAID))
    calls = await harness.send(admin, f"/refund ch-{uid}")
    assert _sent_to(calls, ADMIN_ID) == [tr("en", "adm_refund_done", stars=150, user_id=uid,
                                            credits=165)]
    assert _sent_to(calls, uid) == [tr(lang, "refund_notice", stars=150, credits=165,
                                       balance=SIGNUP_BONUS)]
    # Handled again (a replay, a second /refund): no second debit, no second notice.
    again = await harness.send(admin, f"/refund ch-{uid}")
    assert _sent_to(again, uid) == []
    assert await harness.ledger(uid) == [("signup_bonus", SIGNUP_BONUS), ("purchase", 165),
                                         ("purchase_refund", -165)]


async def test_a_refund_of_credits_already_spent_says_the_balance_stays(harness):
    ann, admin = harness.user(6003), harness.user(ADMIN_ID, "Boss")
    await harness.send(ann, "/start")
    await harness.feed(harness.updates.successful_payment(ann, charge_id="ch-6003", **PAID))
    await harness.send(admin, "/credit 6003 =0 spent")
    calls = await harness.send(admin, "/refund ch-6003")
    assert _sent_to(calls, 6003) == [tr("en", "refund_notice_spent", stars=150, balance=0)]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_invoice_title_names_the_bot_as_telegram_knows_it(harness, lang):
    harness.bot._me = None  # MockedBot starts out knowing itself as "kiebot"; ask getMe instead
    harness.bot.session.add_result(GetMe, {"id": 42, "is_bot": True, "first_name": "Pixel Forge",
                                           "username": "pixelforge_bot"})
    ann = harness.user(6004, language_code=lang)
    await harness.send(ann, "/topup")
    calls = await harness.press(ann, tr(lang, "pack_button", stars=150, credits=165))
    [invoice] = [c for c in calls if isinstance(c, SendInvoice)]
    assert invoice.title == tr(lang, "invoice_title", credits=165, bot="Pixel Forge")
    assert "kiebot" not in invoice.title and "Pixel Forge" in invoice.title


async def test_admins_get_their_own_command_menu_at_start(harness):
    harness.bot._me = None
    harness.bot.session.add_result(GetMe, {"id": 42, "is_bot": True, "first_name": "Pixel Forge"})
    await harness.dispatcher.emit_startup(bot=harness.bot, **harness.dispatcher.workflow_data)
    assert len(harness.bot.session.calls_of(GetMe)) == 1  # the name invoices use, fetched once
    assert (await harness.bot.me()).first_name == "Pixel Forge"
    menus = {(type(c.scope).__name__ if c.scope else None,
              getattr(c.scope, "chat_id", None), c.language_code): [b.command for b in c.commands]
             for c in harness.bot.session.calls_of(SetMyCommands)}
    everyone = list(handlers.COMMANDS)
    admins = everyone + list(handlers.ADMIN_COMMANDS)
    assert menus == {(None, None, None): everyone, (None, None, "ru"): everyone,
                     ("BotCommandScopeChat", ADMIN_ID, None): admins,
                     ("BotCommandScopeChat", ADMIN_ID, "ru"): admins}
    ru = [c for c in harness.bot.session.calls_of(SetMyCommands)
          if isinstance(c.scope, BotCommandScopeChat) and c.language_code == "ru"][0]
    assert ru.commands[-1].description == tr("ru", f"cmd_{handlers.ADMIN_COMMANDS[-1]}")


async def test_an_admin_who_never_opened_the_bot_does_not_stop_the_start(harness, caplog):
    caplog.set_level(logging.WARNING, logger="handlers")
    harness.bot.session.add_result(SetMyCommands, True)
    harness.bot.session.add_result(SetMyCommands, True)
    harness.bot.session.add_error(SetMyCommands, description="Bad Request: chat not found")
    await harness.dispatcher.emit_startup(bot=harness.bot, **harness.dispatcher.workflow_data)
    assert len(harness.bot.session.calls_of(SetMyCommands)) == 3
    assert any("admin command menu not set" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_help_lists_the_admin_commands_to_admins_only(harness, lang):
    admin, ann = harness.user(ADMIN_ID, "Boss", language_code=lang), harness.user(6005, language_code=lang)
    await harness.send(admin, "/start")
    await harness.send(ann, "/start")
    assert texts(await harness.send(admin, "/help")) == [
        tr(lang, "help") + "\n\n" + tr(lang, "help_admin") + "\n" + tr(lang, "help_admin_promo")]
    assert texts(await harness.send(ann, "/help")) == [tr(lang, "help")]
    # The menu's Help button says the same.
    calls = await harness.press(admin, tr(lang, "btn_help"))
    assert tr(lang, "help_admin") in texts(calls)[0]
