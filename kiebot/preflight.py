"""Checks `kiebot run` makes before serving, each ending in one line that names the variable.

`check_port` runs before anything heavy is imported: a port already taken is known in
milliseconds, not after the migrations. `check_telegram` asks getMe, retrying a Telegram that
cannot be reached with capped exponential backoff for START_RETRY_SECONDS, and tells a refused
token (401/404: no retry helps) apart from a network that is down. Only the standard library
is imported at the top.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("kiebot.preflight")

# `kiebot run`'s exit statuses (kiebot/cli.py's docstring).
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_UNREACHABLE = 4

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0
REQUEST_TIMEOUT_S = 10


class StartRefused(Exception):
    """The process must not start: `lines` (one per cause, no values) and the exit status."""

    def __init__(self, lines: list[str], exit_code: int = EXIT_CONFIG) -> None:
        self.lines = list(lines)
        self.exit_code = exit_code
        super().__init__("\n".join(self.lines))


def check_port(host: str, port: int, variable: str = "SERVER_PORT") -> None:
    """Bind (and release) every address `host` resolves to, as the server will."""
    if port == 0:
        return  # the OS picks a free port
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartRefused([f"SERVER_HOST: cannot listen on {host!r} ({exc.strerror})"]) from None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
        except OSError as exc:
            raise bind_refusal(exc, host, port, variable) from None
        finally:
            sock.close()


def bind_refusal(exc: OSError, host: str, port: int, variable: str) -> StartRefused:
    if exc.errno == errno.EADDRINUSE:
        return StartRefused([f"{variable}: port {port} on {host} is already in use (another "
                             f"kiebot or another program; `ss -ltnp` shows which)"])
    if exc.errno == errno.EACCES:
        return StartRefused([f"{variable}: port {port} needs root; use a port above 1023 "
                             f"behind a reverse proxy"])
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartRefused([f"SERVER_HOST: {host} is not an address of this machine "
                             f"(0.0.0.0 listens on all of them)"])
    return StartRefused([f"{variable}: cannot listen on {host}:{port} "
                         f"({exc.strerror or type(exc).__name__})"])


def is_bind_error(exc: OSError) -> bool:
    return exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL)


async def check_telegram(
    bot: Any, *, api_url: str, budget_s: float,
    redact: Callable[[str], str] = lambda text: text,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """getMe until it answers (returns the bot's User) or `budget_s` is spent."""
    from aiogram.exceptions import (
        TelegramNotFound,
        TelegramRetryAfter,
        TelegramUnauthorizedError,
    )

    started = clock()
    deadline = started + budget_s
    delay = FIRST_DELAY_S
    attempt = 0
    while True:
        attempt += 1
        timeout = int(max(1, min(REQUEST_TIMEOUT_S, deadline - clock())))
        try:
            return await bot.get_me(request_timeout=timeout)
        except TelegramUnauthorizedError:
            raise StartRefused(["BOT_TOKEN: Telegram refused it (401 Unauthorized); copy it "
                                "again from @BotFather"]) from None
        except TelegramNotFound:
            raise StartRefused([f"BOT_TOKEN: Telegram at {api_url} answered 404 Not Found to "
                                f"getMe: the token is not a bot's, or TELEGRAM_API_BASE_URL "
                                f"is not a Bot API server"]) from None
        except TelegramRetryAfter as exc:
            wait, reason = float(exc.retry_after), f"429, retry after {exc.retry_after} s"
        except Exception as exc:  # network errors, 5xx, timeouts, garbage answers
            wait, reason = delay, redact(_reason(exc))
            delay = min(delay * 2, MAX_DELAY_S)
        left = deadline - clock()
        if left <= 0:
            raise StartRefused(
                [f"TELEGRAM_API_BASE_URL: Telegram unreachable at {api_url}: {attempt} "
                 f"attempt{'s' if attempt != 1 else ''} in {clock() - started:.1f} s, the last: "
                 f"{reason}"], EXIT_UNREACHABLE) from None
        wait = min(wait, left)
        log.warning("telegram unreachable at start attempt=%d retry_in=%.1fs reason=%r",
                    attempt, wait, reason)
        await sleep(wait)


def _reason(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
