"""`kiebot run | migrate [--sql]` (also `python -m kiebot ...`). The demo is not part of the
product: `make demo` plays it from the test kit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from bot.config import DatabaseSettings, SettingsError, load_settings, url_password
from bot.logging import configure_logging, install_redaction, kv
from storage.errors import StorageError

log = logging.getLogger("kiebot.cli")

EXIT_CONFIG = 2
EXIT_DATABASE = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiebot", description="KIE.ai generation bot")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="migrate if needed, then serve (bot, server, jobs)")
    run.add_argument(
        "--role", choices=("all", "web", "worker"), default=None,
        help="all (default, or PROCESS_ROLE): everything; web: Telegram updates (webhook or "
             "polling), KIE callbacks, /media; worker: pipeline jobs only, never the webhook")
    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--sql", action="store_true",
                         help="print the Postgres DDL (for Supabase's SQL editor) instead")
    return parser


async def _run(role: str | None = None) -> int:
    from kiebot.app import build_app, secrets_of

    settings = load_settings()
    configure_logging(settings.log_level, fmt=settings.log_format)
    # Before anything can log: the app installs its own layer again on start.
    handle = install_redaction(secrets_of(settings))
    if settings.sentry_dsn is not None:
        from bot.sentry import init_sentry

        init_sentry(settings.sentry_dsn.get_secret_value(), secrets_of(settings),
                    environment=settings.sentry_environment, release=_version())
    app = build_app(settings, role=role)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        # The readiness line: the server listens and the jobs and Telegram intake have started.
        # Supervisors and the end-to-end tests wait for this line, not for a guessed delay.
        log.info(kv("kiebot ready", mode="webhook" if settings.webhook_mode else "polling",
                    role=app.role))
        await stop.wait()
        log.info("shutdown requested")
    finally:
        await app.stop()
        handle.uninstall()
    return 0


async def _migrate(sql: bool) -> int:
    from migrations import runner as migrate

    if sql:
        print(migrate.postgres_sql())
        return 0
    settings = DatabaseSettings()
    configure_logging(settings.log_level, fmt=settings.log_format)
    handle = install_redaction([p for p in [url_password(settings.database_url)] if p])
    try:
        changed = await migrate.ensure_schema(settings.database_url)
    finally:
        handle.uninstall()
    print("schema upgraded" if changed else "schema already up to date")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"kiebot@{version('kiebot')}"
    except PackageNotFoundError:
        return "kiebot@unknown"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return asyncio.run(_run(args.role))
        return asyncio.run(_migrate(args.sql))
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    except StorageError as exc:
        # Already scrubbed of the URL's password by the storage layer; no traceback for operators.
        print(f"database error: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
