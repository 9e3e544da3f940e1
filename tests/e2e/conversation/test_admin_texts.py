"""What an admin reads: /user, /stats, /ledgercheck and /selftest in the admin's language, with
counted nouns in the right form, yes/no instead of True/False and no raw exception text."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from bot.services.accounts import AccountError
from handlers.admin import account_error_text, format_stats, format_user
from handlers.selftest import render, start_error_text
from kie_client.catalog import Catalog, UnknownModelError
from storage.errors import InFlightLimitError
from tests.e2e.conversation.conftest import ADMIN_ID, seen

WHEN = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def _stats(payments: int) -> dict:
    period = {"generations": {("seedream_45_t2i", "succeeded"): 3, ("seedream_45_t2i", "failed"): 1},
              "credits_sold": 10 * payments, "payments": payments, "stars": 10 * payments,
              "credits_spent": 24, "credits_refunded": 8, "credits_bonus": 50}
    return {"today": period, "7 days": period, "all": {**period, "generations": {}}}


@pytest.mark.parametrize("n,ru,en", [
    (1, "1 платёж", "1 payment"), (2, "2 платежа", "2 payments"), (5, "5 платежей", "5 payments"),
    (11, "11 платежей", "11 payments"), (21, "21 платёж", "21 payments"),
    (0, "0 платежей", "0 payments"),
])
def test_stats_count_payments_in_both_languages(n, ru, en):
    ru_text, en_text = format_stats("ru", _stats(n)), format_stats("en", _stats(n))
    assert f"Продано {10 * n}⭐ ({ru}, {10 * n} Stars)" in ru_text
    assert f"Sold {10 * n}⭐ ({en}, {10 * n} Stars)" in en_text
    assert "— Сегодня —" in ru_text and "— За 7 дней —" in ru_text and "— За всё время —" in ru_text
    assert "— Today —" in en_text and "— Last 7 days —" in en_text and "— All time —" in en_text
    assert "генераций не было" in ru_text and "no generations" in en_text
    # model keys and stored statuses are shown as the admin knows them from the menus
    assert "✅ готово 3" in ru_text and "❌ ошибка 1" in ru_text
    assert "succeeded" not in ru_text and "succeeded" not in en_text


def test_stats_use_catalog_names_and_keep_unknown_keys():
    stats = {"all": {"generations": {("seedream_45_t2i", "queued"): 2, ("retired_model", "failed"): 1}}}
    text = format_stats("en", stats, Catalog())
    assert "Seedream 4.5: ⏳ queued 2" in text and "retired_model: ❌ failed 1" in text


def _report(*, gens: int, blocked: bool, language: str | None, refunded: bool = False):
    user = SimpleNamespace(id=77, username="ann", first_name="Ann", last_name=None, balance=12,
                           blocked=blocked, language=language)
    g = SimpleNamespace(id=5, model_key="seedream_45_t2i", status="failed", cost=8, created_at=WHEN)
    p = SimpleNamespace(telegram_payment_charge_id="stx1", stars=50, credits=50, created_at=WHEN,
                        refunded_at=WHEN if refunded else None)
    return SimpleNamespace(user=user, generation_count=gens, generations=[g], payments=[p])


@pytest.mark.parametrize("gens,ru,en", [
    (1, "Всего 1 генерация", "1 generation in total"), (3, "Всего 3 генерации", "3 generations in total"),
    (12, "Всего 12 генераций", "12 generations in total"), (101, "Всего 101 генерация", "101 generations in total"),
])
def test_user_card_counts_generations(gens, ru, en):
    assert ru in format_user("ru", _report(gens=gens, blocked=False, language="ru"))
    assert en in format_user("en", _report(gens=gens, blocked=False, language="ru"))


def test_user_card_says_yes_no_and_names_things():
    ru = format_user("ru", _report(gens=1, blocked=True, language="en", refunded=True), Catalog())
    en = format_user("en", _report(gens=1, blocked=False, language=None))
    assert "Язык: английский · заблокировал бота: да" in ru
    assert "№5 Seedream 4.5 · ❌ ошибка · 8⭐ · 24.11 09:30" in ru
    assert "stx1: 50 Stars → 50⭐ · 24.11 09:30 · возвращён" in ru
    assert "Language: not chosen · blocked the bot: no" in en
    assert "#5 seedream_45_t2i · ❌ failed · 8⭐" in en and "refunded" not in en
    for text in (ru, en):
        assert "True" not in text and "False" not in text and "None" not in text


@pytest.mark.parametrize("exc,ru,en", [
    (AccountError("x", code="below_zero", balance=3), "ниже нуля (сейчас 3⭐)", "below zero (it is 3⭐)"),
    (AccountError("x", code="no_user", who="@zed"), "Нет такого пользователя: @zed.", "No such user: @zed."),
    (AccountError("x", code="bad_amount"), "+N, -N или =N", "+N, -N or =N"),
    (AccountError("x", code="amount_range"), "Слишком большая сумма", "The amount is too large"),
    (AccountError("boom internals"), "Ничего не изменено", "Nothing was changed"),
])
def test_credit_errors_are_sentences_in_the_admins_language(exc, ru, en):
    assert ru in account_error_text("ru", exc) and en in account_error_text("en", exc)
    assert "boom" not in account_error_text("en", exc)


def test_selftest_failure_shows_the_localized_reason_not_the_raw_error():
    g = SimpleNamespace(id=9, task_id="t-1", status="failed", kie_state="fail", poll_attempts=4,
                        created_at=WHEN, result_urls=[], fail_code="400",
                        error="KIE could not generate this: prompt flagged as sensitive")
    ru = render("ru", "Seedream 4.5", g, WHEN.replace(minute=31))
    en = render("en", "Seedream 4.5", g, WHEN.replace(minute=31))
    assert "Самопроверка не удалась: модель отклонила запрос" in ru and "Состояние: ❌ ошибка (fail)" in ru
    assert "Прошло: 60 с" in ru
    assert "Self-test failed: the model refused this request" in en and "Elapsed: 60 s" in en
    for text in (ru, en):
        assert "KIE" not in text and "flagged" not in text


def test_selftest_start_errors_are_sentences():
    assert "2 генерации в работе" in start_error_text("ru", InFlightLimitError(2), None)
    text = start_error_text("en", UnknownModelError("nope"), None)
    assert text == "❌ Self-test failed: this model is no longer offered."


# --- through Telegram ------------------------------------------------------------------------

async def _fixture_user(stack, uid: int, *, payments: int, blocked: bool) -> None:
    repo = stack.app.repository
    await stack.app.accounts.register(uid, username=f"u{uid}", first_name="Ann", language_code="en")
    for i in range(payments):
        await repo.credit_purchase(user_id=uid, charge_id=f"ch-{uid}-{i}", stars=10, credits=10,
                                   payload=None)
    for i in range(2):
        started = await repo.start_generation(
            user_id=uid, chat_id=uid, model_key="seedream_45_t2i", kind="image", cost=1,
            options={}, prompt="x", request_key=f"r-{uid}-{i}")
        await repo.fail_generation(started.generation.id, error="boom")
    if blocked:
        await stack.app.accounts.set_blocked(uid, True)


async def test_russian_admin_reads_user_and_stats(webhook_stack):
    await _fixture_user(webhook_stack, 4400, payments=5, blocked=True)
    admin = webhook_stack.telegram.user(ADMIN_ID, first_name="Админ", language_code="ru")
    await admin.send_command("/user", "@u4400")
    card = await seen(admin, "👤 4400 @u4400 Ann")
    assert "Язык: английский · заблокировал бота: да" in card.text
    assert "Всего 2 генерации, последние:" in card.text and "Seedream 4.5 · ❌ ошибка" in card.text
    assert "True" not in card.text and "boom" not in card.text
    await admin.send_command("/stats")
    stats = await seen(admin, "📊 Статистика")
    assert "Продано 50⭐ (5 платежей, 50 Stars)" in stats.text
    assert "— Сегодня —" in stats.text and "Seedream 4.5: ❌ ошибка 2" in stats.text
    await admin.send_command("/user", "@nobody_here")
    await seen(admin, "Нет такого пользователя: @nobody_here")


async def test_english_admin_reads_user_and_stats(webhook_stack):
    await _fixture_user(webhook_stack, 4401, payments=1, blocked=False)
    admin = webhook_stack.telegram.user(ADMIN_ID, first_name="Root", language_code="en")
    await admin.send_command("/user", "4401")
    card = await seen(admin, "👤 4401 @u4401 Ann")
    assert "Language: English · blocked the bot: no" in card.text
    assert "🎨 2 generations in total, latest:" in card.text
    assert "False" not in card.text
    await admin.send_command("/stats")
    stats = await seen(admin, "📊 Stats")
    assert "Sold 10⭐ (1 payment, 10 Stars)" in stats.text and "— All time —" in stats.text


@pytest.mark.parametrize("language_code,answer", [
    ("en", "I don't know this command. Try /start or /help."),
    ("ru", "Я не знаю такой команды. Попробуйте /start или /help."),
])
async def test_user_and_stats_stay_unknown_to_non_admins(webhook_stack, language_code, answer):
    await _fixture_user(webhook_stack, 4402, payments=1, blocked=False)
    eve = webhook_stack.telegram.user(4403, first_name="Eve", language_code=language_code)
    for command, args in (("/user", "4402"), ("/stats", None), ("/ledgercheck", None)):
        await eve.send_command(command, args)
        reply = await eve.wait_for_message()
        assert reply.text == answer and reply.buttons == []


async def test_refund_refused_by_telegram_and_ledger_mismatch_read_as_sentences(webhook_stack):
    import sqlalchemy as sa

    from storage.schema import users

    stack = webhook_stack
    await _fixture_user(stack, 4404, payments=1, blocked=False)  # a charge Telegram never saw
    admin = stack.telegram.user(ADMIN_ID, first_name="Админ", language_code="ru")
    await admin.send_command("/refund", "ch-4404-0")
    refused = await seen(admin, "Telegram отказал в возврате (CHARGE_NOT_FOUND)")
    assert "Ничего не изменено" in refused.text and "Bad Request" not in refused.text
    assert await stack.app.accounts.balance(4404) == 60
    assert (await stack.app.accounts.get_payment("ch-4404-0")).refunded_at is None

    async with stack.app.repository.engine.begin() as conn:
        await conn.execute(sa.update(users).where(users.c.id == 4404).values(balance=61))
    await admin.send_command("/ledgercheck")
    bad = await seen(admin, "❌ Расхождения в журнале, пользователей: 1")
    assert "4404: 61⭐ / 60⭐" in bad.text and "и ещё" not in bad.text
