"""/paysupport: the default text says how to reach support, and `/paysupport <message>` does;
the in-flight limit alert with a counted noun."""

from __future__ import annotations

import pytest

from testkit.stack import LocalStack
from tests.e2e.conversation.conftest import ADMIN_ID, seen, start_image_flow


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_paysupport_message_reaches_every_admin(webhook_stack, lang):
    tg = webhook_stack.telegram
    admin = tg.user(ADMIN_ID, first_name="Root", language_code="en")
    pat = tg.user(5100, first_name="Pat", username="pat_w", language_code=lang)
    how, sent = {"en": ("send /paysupport followed by your message", "passed to support"),
                 "ru": ("отправьте /paysupport и сразу за ним ваше сообщение", "передано в поддержку")}[lang]
    await pat.send_command("/paysupport")
    assert how in (await seen(pat, "/paysupport")).text
    await pat.send_command("/paysupport", "paid 50 Stars on 24.11, no ⭐ arrived")
    await seen(pat, sent)
    forwarded = await seen(admin, "Payment support from 5100 @pat_w Pat")
    assert "paid 50 Stars on 24.11, no ⭐ arrived" in forwarded.text
    # Nothing the user typed turned into a generation prompt.
    assert not any("Ready to generate" in e.text or "Всё готово" in e.text
                   for e in pat.transcript if e.from_bot)


async def test_paysupport_without_admins_points_to_terms_and_keeps_the_override(tmp_path):
    async with LocalStack(tmp_path, webhook=True, settings={
            "ADMIN_IDS": "", "PAYSUPPORT_TEXT": "Billing: write to @kie_owner"}) as stack:
        pat = stack.telegram.user(5200, first_name="Pat", language_code="ru")
        await pat.send_command("/paysupport")
        await seen(pat, "Billing: write to @kie_owner")
        await pat.send_command("/paysupport", "где мои звёзды?")
        reply = await seen(pat, "по контакту из /terms")
        assert "не подключена" in reply.text


async def test_in_flight_limit_alert_counts_generations_in_russian(tmp_path):
    async with LocalStack(tmp_path, webhook=True,
                          settings={"MAX_IN_FLIGHT": "1", "SIGNUP_BONUS": "50"}) as stack:
        ivan = stack.telegram.user(5300, first_name="Иван", language_code="ru")
        await stack.app.jobs.stop()  # the first generation stays in line
        stack.app.generations.pipeline.kick = lambda stage: None
        generate = await start_image_flow(ivan, "ru", "кот")
        await ivan.tap(generate)
        await seen(ivan, "в очереди")
        generate = await start_image_flow(ivan, "ru", "пёс")
        answer = await ivan.tap(generate)
        assert answer.text.startswith("У вас уже 1 генерация в работе — это максимум")
        assert answer.show_alert and await stack.app.accounts.balance(5300) == 42
