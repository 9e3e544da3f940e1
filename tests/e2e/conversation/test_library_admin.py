"""Library paging and resend; admin commands; refusal to non-admins; /selftest."""

from __future__ import annotations

import pytest

from tests.e2e.conversation.conftest import ADMIN_ID, click, ledger, seen, start_image_flow, wait_media


async def _failed_rows(stack, user_id: int, count: int) -> None:
    """Old failures in the user's history: failed, refunded and long since told (delivered), so
    the deliverer sends nothing now and the chat holds only what the library shows."""
    repo = stack.app.repository
    for i in range(count):
        started = await repo.start_generation(
            user_id=user_id, chat_id=user_id, model_key="kling_26_t2v", kind="video", cost=1,
            options={}, prompt=f"old idea number {i}", request_key=f"lib-{i}")
        await repo.fail_generation(started.generation.id, fail_code="400",
                                   error="KIE could not generate this: prompt flagged as sensitive")
        assert await repo.mark_delivered(started.generation.id)


async def test_library_pages_resends_and_explains_failures(webhook_stack):
    ann = webhook_stack.telegram.user(4000, first_name="Ann", language_code="en")
    await ann.send_command("/library")
    await seen(ann, "Your library is empty")
    await _failed_rows(webhook_stack, 4000, 6)
    await start_image_flow(ann, prompt="a paper boat on a lake")
    await click(ann, "Generate · 8⭐")
    await wait_media(ann, 1)
    await ann.send_command("/library")
    page1 = await seen(ann, "page 1/2")
    assert "1. Seedream 4.5 · ✅ done" in page1.text and "«a paper boat on a lake»" in page1.text
    assert page1.buttons[0] == ["1", "2", "3", "4", "5"] and ["▶"] in page1.buttons
    await ann.tap("1", page1)
    await wait_media(ann, 2)  # the stored picture, sent again
    await ann.tap("▶", page1)
    page2 = await seen(ann, "page 2/2")
    assert "7. Kling 2.6 · ❌ failed" in page2.text
    await ann.tap("7", page2)
    failure = await seen(ann, "This generation failed: the model refused this request")
    assert "Refunded to your balance: 1⭐." in failure.text and "KIE" not in failure.text
    assert all(a.answered for a in ann.callback_answers)


async def test_library_in_russian(webhook_stack):
    ivan = webhook_stack.telegram.user(4001, first_name="Иван", language_code="ru")
    await webhook_stack.app.accounts.register(4001, language_code="ru")
    await _failed_rows(webhook_stack, 4001, 1)
    await ivan.send_command("/library")
    page = await seen(ivan, "Мои работы: 1")
    assert "❌ ошибка" in page.text
    await ivan.tap("1", page)
    failure = await seen(ivan, "Генерация не удалась: модель отклонила запрос")
    assert "На баланс возвращено 1⭐." in failure.text
    assert not any(w in failure.text for w in ("KIE", "flagged", "sensitive"))


@pytest.mark.parametrize("command", ["/credit 1 +5", "/user 1", "/stats", "/refund x", "/ledgercheck",
                                     "/selftest"])
async def test_admin_commands_look_unknown_to_others(webhook_stack, command):
    eve = webhook_stack.telegram.user(4100, first_name="Eve", language_code="en")
    await eve.send_command(*command.split(" ", 1)) if " " in command else await eve.send_command(command)
    reply = await eve.wait_for_message()
    assert reply.text == "I don't know this command. Try /start or /help."
    assert reply.buttons == []


async def test_admin_commands_look_unknown_to_russian_speakers_too(webhook_stack):
    ivan = webhook_stack.telegram.user(4101, first_name="Иван", language_code="ru")
    for command, args in (("/credit", "4101 +100"), ("/stats", None), ("/refund", "x")):
        await ivan.send_command(command, args)
        reply = await ivan.wait_for_message()
        assert reply.text == "Я не знаю такой команды. Попробуйте /start или /help."
        assert reply.buttons == []
    assert await webhook_stack.app.accounts.balance(4101) == 50


async def test_admin_credit_user_stats_refund_ledgercheck(webhook_stack):
    stack = webhook_stack
    ann = stack.telegram.user(4200, first_name="Ann", username="ann_k", language_code="ru")
    admin = stack.telegram.user(ADMIN_ID, first_name="Root", language_code="en")
    await ann.send_command("/start")
    await seen(ann, "Баланс: 50⭐")

    await admin.send_command("/credit", "@ann_k +10 welcome back")
    await seen(admin, "User 4200: balance 60⭐ (was 50⭐)")
    notice = await seen(ann, "Администратор изменил ваш баланс на +10⭐")
    assert "(welcome back)" in notice.text and "Баланс: 60⭐" in notice.text
    await admin.send_command("/credit", "4200 -100")
    await seen(admin, "below zero")
    await admin.send_command("/credit", "@nobody_at_all +1")
    await seen(admin, "No such user: @nobody_at_all. Check the id or @username")
    await admin.send_command("/credit", "4200 +0")
    await seen(admin, "The amount must not be zero.")
    await admin.send_command("/credit", "4200 lots")
    await seen(admin, "The amount must look like +N, -N or =N")
    await admin.send_command("/credit", "4200 =40 reset")
    await seen(admin, "balance 40⭐ (was 60⭐)")
    await admin.send_command("/credit")
    await seen(admin, "Usage: /credit")

    await click(ann, "💰 Баланс")
    await click(ann, "💳 Пополнить")
    await click(ann, "50⭐ за 50 Telegram Stars")
    await ann.wait_until(lambda t: any(e.invoice for e in t))
    outcome = await ann.pay()
    await seen(ann, "Баланс: 90⭐")

    await admin.send_command("/user", "@ann_k")
    card = await seen(admin, "👤 4200 @ann_k Ann")
    assert "Balance: 90⭐" in card.text and outcome.charge_id in card.text
    assert "blocked the bot: no" in card.text and "Language: Russian" in card.text
    assert "🎨 0 generations in total" in card.text
    await admin.send_command("/stats")
    stats = await seen(admin, "📊 Stats")
    assert "Sold 50⭐ (1 payment, 50 Stars)" in stats.text
    assert "— Today —" in stats.text and "payments" not in stats.text

    await admin.send_command("/refund", outcome.charge_id)
    await seen(admin, "Refunded 50 Telegram Stars to 4200; debited 50⭐")
    await seen(ann, "Ваш платёж на 50 Telegram Stars возвращён. С баланса списано 50⭐, теперь на нём 40⭐.")
    assert any(c.method == "refundStarPayment" for c in stack.telegram.calls)
    assert await stack.app.accounts.balance(4200) == 40
    await admin.send_command("/refund", outcome.charge_id)
    await seen(admin, "was already refunded")
    await admin.send_command("/refund", "stxNOPE")
    await seen(admin, "No payment with charge id stxNOPE")
    await admin.send_command("/ledgercheck")
    await seen(admin, "✅ Ledger check")
    reasons = [r for r, _ in await ledger(stack, 4200)]
    assert reasons == ["signup_bonus", "admin_adjust", "admin_adjust", "purchase", "purchase_refund"]


@pytest.mark.parametrize("button", ["🧪 Seedream 4.5", "🧪 Bytedance V1 Pro", "🧪 Kling Avatar",
                                    "🧪 Veo 3.1 Lite"])
async def test_selftest_runs_a_model_free_and_shows_it_live(webhook_stack, button):
    admin = webhook_stack.telegram.user(ADMIN_ID, first_name="Root", language_code="en")
    await admin.send_command("/start")
    await seen(admin, "Balance: 50⭐")
    await admin.send_command("/selftest")
    await click(admin, button)
    done = await seen(admin, "Results:", timeout=20)
    assert "Task: " in done.text and "Task: —" not in done.text
    assert "Poll attempts:" in done.text and "State: ✅ done" in done.text
    assert "succeeded" not in done.text
    assert "/media/" in done.text
    assert await webhook_stack.app.accounts.balance(ADMIN_ID) == 50  # no charge


async def test_admin_credit_records_who_and_why(webhook_stack):
    stack = webhook_stack
    await stack.app.accounts.register(4300, language_code="en")
    admin = stack.telegram.user(ADMIN_ID, first_name="Root", language_code="en")
    await admin.send_command("/credit", "4300 +7  goodwill  ")
    await seen(admin, "User 4300: balance 57⭐ (was 50⭐)")
    await admin.send_command("/credit", "4300 =10")
    await seen(admin, "User 4300: balance 10⭐ (was 57⭐)")
    await admin.send_command("/credit", f"4300 +1 {'x' * 501}")
    await seen(admin, "The reason is too long: at most 500 characters.")
    rows = [(e.delta, e.admin_id, e.note) for e in await stack.app.repository.ledger(4300, limit=10)
            if e.reason == "admin_adjust"]
    assert rows == [(-47, ADMIN_ID, None), (7, ADMIN_ID, "goodwill")]
