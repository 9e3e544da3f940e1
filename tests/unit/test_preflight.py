"""Start-up checks: Telegram retried with capped backoff on a fake clock (no sleeping), a
refused token named at once, and the last reason in the one line."""

from __future__ import annotations

import pytest
from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetMe

from kiebot.preflight import EXIT_UNREACHABLE, StartRefused, check_telegram


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeBot:
    """get_me answers from a script: exceptions are raised, anything else returned."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.timeouts: list[int] = []

    async def get_me(self, request_timeout: int | None = None) -> object:
        self.timeouts.append(request_timeout)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return step


def network_down() -> TelegramNetworkError:
    return TelegramNetworkError(GetMe(), "HTTP Client says - Cannot connect to host")


async def test_a_network_that_comes_back_is_waited_for_with_growing_delays():
    clock = Clock()
    bot = FakeBot(network_down(), network_down(), TelegramServerError(GetMe(), "Bad Gateway"),
                  "me")
    assert await check_telegram(bot, api_url="https://api.telegram.org", budget_s=60,
                                sleep=clock.sleep, clock=clock) == "me"
    assert clock.slept == [0.5, 1.0, 2.0]


async def test_retry_after_is_honoured():
    clock = Clock()
    bot = FakeBot(TelegramRetryAfter(GetMe(), "Too Many Requests", 7), "me")
    await check_telegram(bot, api_url="x", budget_s=60, sleep=clock.sleep, clock=clock)
    assert clock.slept == [7.0]


async def test_gives_up_after_the_budget_with_one_line_and_exit_4():
    clock = Clock()
    bot = FakeBot(network_down())
    with pytest.raises(StartRefused) as info:
        await check_telegram(bot, api_url="https://api.telegram.org", budget_s=20,
                             sleep=clock.sleep, clock=clock)
    assert info.value.exit_code == EXIT_UNREACHABLE
    (line,) = info.value.lines
    assert line.startswith(
        "TELEGRAM_API_BASE_URL: Telegram unreachable at https://api.telegram.org")
    assert "Cannot connect to host" in line
    # 0.5 + 1 + 2 + 4 + 8 = 15.5, then the 10 s cap cut to what is left of the 20 s.
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 8.0, 4.5]
    assert max(bot.timeouts) <= 10 and min(bot.timeouts) >= 1


async def test_a_refused_token_is_named_at_once_without_retrying():
    clock = Clock()
    bot = FakeBot(TelegramUnauthorizedError(GetMe(), "Unauthorized"))
    with pytest.raises(StartRefused) as info:
        await check_telegram(bot, api_url="x", budget_s=60, sleep=clock.sleep, clock=clock)
    assert info.value.exit_code == 2 and info.value.lines[0].startswith("BOT_TOKEN: ")
    assert clock.slept == [] and len(bot.timeouts) == 1


async def test_reasons_pass_through_redaction():
    clock = Clock()
    bot = FakeBot(TelegramNetworkError(GetMe(), "failed at /bot123:SECRETPART/getMe"))
    with pytest.raises(StartRefused) as info:
        await check_telegram(bot, api_url="x", budget_s=0, sleep=clock.sleep, clock=clock,
                             redact=lambda text: text.replace("SECRETPART", "***"))
    assert "SECRETPART" not in info.value.lines[0]
