"""Shared helpers for the pipeline end-to-end tests (bot + KIE emulator + fake Telegram)."""

from __future__ import annotations

import itertools

from testkit.stack import LocalStack
from tests.conftest import wait_until

BONUS = 100
_keys = itertools.count(1)


async def make_user(stack: LocalStack, user_id: int = 111, *, language: str = "en"):
    """A Telegram user who has started the bot, registered with the signup bonus."""
    tg = stack.telegram.user(user_id, first_name="Ann", language_code=language)
    await stack.app.repository.register_user(
        user_id, username=f"u{user_id}", first_name="Ann", last_name=None, language=language,
        signup_bonus=BONUS,
    )
    return tg


async def start(stack: LocalStack, user_id: int = 111, model_key: str = "seedream_45_t2i", *,
                prompt: str = "a red fox in the snow", options: dict | None = None,
                card: bool = False, **kwargs):
    app = stack.app
    progress_id = None
    if card:
        from aiogram.methods import SendMessage

        # Through the process's sender, as the handlers' summary card would be.
        msg = await app.sender.send(user_id, SendMessage(chat_id=user_id, text="Starting…"))
        progress_id = msg.message_id
    return await app.generations.start(
        user_id=user_id, chat_id=user_id, model_key=model_key, options=options or {},
        prompt=prompt, request_key=f"req-{next(_keys)}", progress_message_id=progress_id,
        **kwargs,
    )


async def wait_final(stack: LocalStack, generation_id: int, *, delivered: bool = True,
                     timeout: float = 60.0):
    async def done():
        g = await stack.app.repository.get_generation(generation_id)
        if g is None or not g.is_final:
            return None
        if delivered and g.delivered_at is None:
            return None
        return g

    return await wait_until(done, timeout=timeout, interval=0.05)


async def balance(stack: LocalStack, user_id: int = 111) -> int:
    user = await stack.app.repository.get_user(user_id)
    return user.balance


async def ledger_reasons(stack: LocalStack, user_id: int = 111) -> list[tuple[str, int]]:
    entries = await stack.app.repository.ledger(user_id, limit=100)
    return sorted((e.reason, e.delta) for e in entries)


def media_messages(tg) -> list:
    return [e for e in tg.bot_messages if e.media]


def plain_stack(tmp_path, **kwargs) -> LocalStack:
    """A stack whose user-visible texts come from PlainPresenter (stable for assertions)."""
    from testkit.presenter import PlainPresenter
    from testkit.kie.faults import StateDelays

    options = kwargs.pop("emulator_options", None) or {}
    options.setdefault("delays", StateDelays(waiting=0.1, queuing=None, generating=0.1))
    presenter = kwargs.pop("presenter", None) or PlainPresenter()
    return LocalStack(tmp_path, presenter=presenter, emulator_options=options, **kwargs)
