"""Telegram hiccups during a conversation: a photo Telegram won't hand over, a flood-limited reply."""

from __future__ import annotations

from tests.e2e.conversation.conftest import click, png_bytes, seen, wait_media


async def test_photo_download_failure_asks_for_the_photo_again(webhook_stack):
    ann = webhook_stack.telegram.user(7000, first_name="Ann", language_code="en")
    await webhook_stack.app.accounts.register(7000, language_code="en")
    await webhook_stack.app.accounts.admin_credit("7000", "=100", admin_id=1)
    await ann.send_command("/start")
    await click(ann, "🎞 Animate a photo")
    await click(ann, "Bytedance V1 Pro · 30⭐")
    await click(ann, "Continue · 30⭐")
    await ann.send_photo(png_bytes(), caption="slow zoom")
    await seen(ann, "Ready to generate")
    webhook_stack.telegram.faults.server_error_next(1)  # getFile answers 500
    answer = await click(ann, "Generate · 30⭐")
    assert answer.answered
    again = await seen(ann, "I couldn't fetch that file from Telegram")
    assert "Send a photo for Bytedance V1 Pro" in again.text
    assert await webhook_stack.app.accounts.balance(7000) == 100
    await ann.send_photo(png_bytes(), caption="slow zoom")
    await ann.wait_for_message(lambda m: "Ready to generate" in m.text)
    await click(ann, "Generate · 30⭐")
    await wait_media(ann, 1)
    assert await webhook_stack.app.accounts.balance(7000) == 70


async def test_a_flood_limited_reply_is_retried_not_lost(webhook_stack):
    ann = webhook_stack.telegram.user(7100, first_name="Ann", language_code="en")
    webhook_stack.telegram.faults.flood_next(2, retry_after=1)
    await ann.send_command("/help")
    reply = await ann.wait_for_message(timeout=10)
    assert "How it works" in reply.text
    assert len(webhook_stack.telegram.flood_events) >= 2
