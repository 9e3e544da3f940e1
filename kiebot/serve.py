"""What `kiebot run` and `kiebot migrate` do once the settings are known good (kiebot/cli.py
checks them first, before this module and everything heavy it imports are loaded).

Every failure an operator can fix ends as `StartRefused`: one line naming the variable, no
traceback, no secret (the redaction layer's own list masks the reason texts too).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from aiogram.exceptions import TelegramBadRequest
from bot.config import DatabaseSettings, Settings, url_password
from bot.logging import Redactor, configure_logging, install_redaction, kv
from bot.server import WEBHOOK_PATH
from storage.errors import StorageError

from kiebot.app import build_app, check_redis, secrets_of
from kiebot.preflight import (
    EXIT_DATABASE,
    StartRefused,
    bind_refusal,
    check_telegram,
    is_bind_error,
)

# The readiness line's logger name is the one operators and the test kit already match.
log = logging.getLogger("kiebot.cli")


def database_refusal(exc: StorageError) -> StartRefused:
    # Storage errors carry the driver's reason with the URL's password already masked.
    return StartRefused([f"DATABASE_URL: database error: {exc}"], EXIT_DATABASE)


async def serve(settings: Settings, role: str | None = None) -> int:
    # Lines are written by a thread of their own, off the event loop (bot/logging.py).
    lines = configure_logging(settings.log_level, fmt=settings.log_format, background=True)
    # Before anything can log: the app installs its own layer again on start.
    secrets = secrets_of(settings)
    handle = install_redaction(secrets)
    if settings.sentry_dsn is not None:
        from bot.sentry import init_sentry

        init_sentry(settings.sentry_dsn.get_secret_value(), secrets,
                    environment=settings.sentry_environment, release=f"kiebot@{_version()}")
    try:
        return await _serve(settings, role, Redactor(secrets).redact)
    except StorageError as exc:
        raise database_refusal(exc) from None
    except OSError as exc:
        if not is_bind_error(exc):
            raise
        raise bind_refusal(exc, settings.server_host, settings.server_port,
                           settings.port_variable) from None
    finally:
        handle.uninstall()
        lines.stop()


async def _serve(settings: Settings, role: str | None, redact) -> int:
    app = build_app(settings, role=role)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if app.redis is not None:  # refused in one line before Telegram is retried for long
            await check_redis(app.redis, settings.redis_url or "")
        # A stop asked for while Telegram is still being retried ends the start at once.
        if not await _until_stopped(stop, check_telegram(
                app.bot, api_url=settings.telegram_api_base_url,
                budget_s=settings.start_retry_seconds, redact=redact)):
            return 0
        try:
            await app.start()
        except TelegramBadRequest as exc:
            if "webhook" not in exc.message.lower():
                raise
            # e.g. "bad webhook: Failed to resolve host", "… IP address … is not allowed"
            raise StartRefused([f"PUBLIC_BASE_URL: Telegram refused the webhook at "
                                f"{settings.public_base_url}{WEBHOOK_PATH}: "
                                f"{redact(exc.message)}"]) from None
        log.info(kv("startup heap frozen", objects=freeze_startup_heap()))
        # The readiness line: the server listens and the jobs and Telegram intake have started.
        # Supervisors and the end-to-end tests wait for this line, not for a guessed delay.
        log.info(kv("kiebot ready", mode="webhook" if settings.webhook_mode else "polling",
                    role=app.role))
        await stop.wait()
        log.info("shutdown requested")
    finally:
        await app.stop()
    return 0


def freeze_startup_heap() -> int:
    """Move everything alive after start-up out of the cyclic garbage collector's reach.

    The catalog, aiogram's and pydantic's models and SQLAlchemy's tables are a large heap that
    lives as long as the process; every full collection walked it again, holding the loop for
    140–175 ms (measured with gc.callbacks during `make bench --only callbacks`), so a burst of
    KIE callbacks or updates that met one waited that long. Frozen (gc.freeze), a full
    collection walks only what was made since: 6 ms in the same run. Only the process entry
    point does this; an App started inside a test process leaves that process's heap alone."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def _until_stopped(stop: asyncio.Event, work) -> bool:
    """Run `work`; False (and `work` cancelled) if `stop` is set first."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()  # raises what the work raised
    return True


async def migrate(settings: DatabaseSettings) -> int:
    from migrations import runner

    configure_logging(settings.log_level, fmt=settings.log_format)
    handle = install_redaction([p for p in [url_password(settings.database_url)] if p])
    try:
        changed = await runner.ensure_schema(settings.database_url)
    except StorageError as exc:
        raise database_refusal(exc) from None
    finally:
        handle.uninstall()
    print("schema upgraded" if changed else "schema already up to date")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kiebot")
    except PackageNotFoundError:
        return "unknown"
