"""End-to-end harness: the real app (LocalStack) with the fake Telegram and the KIE emulator."""

from __future__ import annotations

import pytest

from testkit.stack import LocalStack

ADMIN_ID = 900001


TRANSPORTS = ("webhook", "polling")


def pytest_generate_tests(metafunc):
    """`stack` runs on the webhook; a story marked both_transports runs on long polling too.
    One transport is proven by a few whole stories, not by every test twice."""
    if "transport" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_transports") is not None
        metafunc.parametrize("transport", TRANSPORTS if both else TRANSPORTS[:1])


def conversation_stack(tmp_path, *, webhook: bool) -> LocalStack:
    # A scripted user writes a dozen messages in a second where a person takes a minute; with
    # Telegram's burst of 3 most replies would then wait out a 429. Flood handling has tests of
    # its own (test_resilience.py, the pipeline's), so these chats may take a larger burst.
    return LocalStack(tmp_path, webhook=webhook, telegram_options={"chat_burst": 30},
                      settings={"ADMIN_IDS": str(ADMIN_ID), "SIGNUP_BONUS": "50"})


@pytest.fixture
async def stack(transport, tmp_path):
    async with conversation_stack(tmp_path, webhook=transport == "webhook") as s:
        yield s


@pytest.fixture
async def webhook_stack(tmp_path):
    async with conversation_stack(tmp_path, webhook=True) as s:
        yield s


from testkit.scripted import has_button, media_entries, wait_media  # noqa: F401 (re-exported)
from testkit.scripted import see as seen  # noqa: F401
from testkit.scripted import tap as click  # noqa: F401


def png_bytes(size: int = 32) -> bytes:
    from handlers.selftest import test_png

    return test_png(size, size)


async def ledger(stack, user_id: int) -> list[tuple[str, int]]:
    entries = await stack.app.repository.ledger(user_id, limit=50)
    return [(e.reason, e.delta) for e in reversed(entries)]


async def balance(stack, user_id: int) -> int:
    return await stack.app.accounts.balance(user_id)


media_messages = media_entries


async def start_image_flow(user, lang: str = "en", prompt: str = "a lighthouse at dusk"):
    """/start → Create an image → Seedream 4.5 → 16:9 → Continue → prompt; returns the card entry."""
    t = {"en": ("🎨 Create an image", "Aspect ratio: 1:1 ▸", "Continue · 8⭐", "Describe", "Generate · 8⭐"),
         "ru": ("🎨 Создать картинку", "Формат: 1:1 ▸", "Далее · 8⭐", "Опишите", "Сгенерировать · 8⭐")}[lang]
    await user.send_command("/start")
    await user.wait_for_message(lambda m: m.buttons)  # this /start's menu, not an older one
    await click(user, t[0])
    await click(user, "Seedream 4.5 · 8⭐")
    await click(user, t[1])
    await click(user, "16:9")
    await click(user, t[2])
    await seen(user, t[3])
    await user.send_text(prompt)
    await user.wait_until(has_button(t[4]))
    return t[4]
