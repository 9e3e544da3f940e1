"""ReplyRetryMiddleware: a reply refused with 429 inside a handler is sent again after
retry_after (plus jitter), until the waits of that reply add up to the bound; counted without
sleeping (the sleep is injected)."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendMessage

from handlers.middlewares import HandlerContextMiddleware, ReplyRetryMiddleware
from testkit.mocked_bot import MockedBot


def bot_with(middleware: ReplyRetryMiddleware, refusals: int, retry_after: int = 1) -> MockedBot:
    bot = MockedBot()
    bot.session.middleware(middleware)
    for _ in range(refusals):
        bot.session.add_error(SendMessage, error_code=429, description="Too Many Requests",
                              retry_after=retry_after)
    return bot


async def in_handler(work):
    async def handler(event, data):
        return await work()

    return await HandlerContextMiddleware()(handler, None, {})


@pytest.fixture
def slept() -> list[float]:
    return []


def retry(slept: list[float], **kwargs) -> ReplyRetryMiddleware:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return ReplyRetryMiddleware(sleep=sleep, rand=lambda: 0.5, **kwargs)


async def test_a_crowd_refused_many_times_still_gets_its_reply(slept):
    """Ten refusals in a row (more than the six attempts that used to be the bound)."""
    bot = bot_with(retry(slept, jitter_s=1.0), refusals=10)
    sent = await in_handler(lambda: bot.send_message(7, "hello"))
    assert sent.text == "hello"
    assert slept == [1.5] * 10  # retry_after 1 + half of the 1 s jitter, each time
    assert len(bot.session.calls_of(SendMessage)) == 11


async def test_it_gives_up_once_the_waits_would_pass_the_bound(slept):
    bot = bot_with(retry(slept, max_total_s=5.0, jitter_s=1.0), refusals=10)
    with pytest.raises(TelegramRetryAfter):
        await in_handler(lambda: bot.send_message(7, "hello"))
    assert slept == [1.5, 1.5, 1.5]  # a fourth would make 6 s
    assert len(bot.session.calls_of(SendMessage)) == 4


async def test_a_long_retry_after_or_a_send_outside_a_handler_is_not_waited_for(slept):
    bot = bot_with(retry(slept), refusals=1, retry_after=30)
    with pytest.raises(TelegramRetryAfter):
        await in_handler(lambda: bot.send_message(7, "hello"))
    bot = bot_with(retry(slept), refusals=1)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(7, "from the pipeline")  # ChatSender paces those itself
    assert slept == []
