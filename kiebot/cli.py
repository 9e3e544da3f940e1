"""`kiebot run | migrate [--sql] | backup PATH`, `kiebot --version` (also `python -m kiebot`).
The demo is not part of the product: `make demo` plays it from the test kit.

Start-up problems end in one line per cause on stderr — `VARIABLE: reason`, never a value nor
a traceback — and an exit status a supervisor can act on (systemd: RestartPreventExitStatus=2):

  2  configuration: a bad or missing setting, the port taken, Telegram refusing the token
  3  the database: unreachable, refused, missing (the driver's reason, password masked)
  4  Telegram unreachable after START_RETRY_SECONDS of retries (worth restarting later)

Settings are validated before anything heavy is imported (aiogram, SQLAlchemy, the handlers):
this module imports only the standard library at the top, and `bot.config` only pydantic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiebot.preflight import EXIT_CONFIG, EXIT_DATABASE, EXIT_UNREACHABLE, StartRefused

__all__ = ["EXIT_CONFIG", "EXIT_DATABASE", "EXIT_UNREACHABLE", "main"]

REQUIRED_HELP = """\
required variables (environment or .env):
  BOT_TOKEN            the token from @BotFather (<digits>:<secret>)
  KIE_API_KEY          your key from https://kie.ai/api-key
  KIE_CALLBACK_SECRET  at least 16 characters: openssl rand -hex 32

Settings are read from the process environment and from .env in the working directory
({env_path}{env_state}); the environment wins, and a blank value counts as unset. Every
variable is listed with a comment in .env.example. Often set too: PUBLIC_BASE_URL (webhook
mode: https on port 443, 80, 88 or 8443), DATABASE_URL (default: SQLite in data/), REDIS_URL,
ADMIN_IDS, SERVER_HOST / SERVER_PORT (or PORT, as platforms set it).

exit status: 0 stopped cleanly; 2 bad configuration (one line per variable on stderr);
3 database error; 4 Telegram unreachable at start."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kiebot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiebot", description="KIE.ai generation bot")
    parser.add_argument("--version", action="version", version=f"kiebot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    env_path = Path.cwd() / ".env"
    run = sub.add_parser(
        "run", help="migrate if needed, then serve (bot, server, jobs)",
        description="Migrate the database if needed, then serve: the HTTP server, the jobs and "
                    "Telegram (webhook with PUBLIC_BASE_URL, long polling without).",
        epilog=REQUIRED_HELP.format(env_path=env_path,
                                    env_state="" if env_path.is_file() else ", not present"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument(
        "--role", choices=("all", "web", "worker"), default=None,
        help="all (default, or PROCESS_ROLE): everything; web: Telegram updates (webhook or "
             "polling), KIE callbacks, /media; worker: pipeline jobs only, never the webhook")
    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--sql", action="store_true",
                         help="print the Postgres DDL (for Supabase's SQL editor) instead")
    backup = sub.add_parser(
        "backup", help="copy the SQLite database safely while the bot runs (Postgres: print "
                       "the pg_dump command)",
        description="SQLite: copy DATABASE_URL's file with SQLite's online backup API (safe "
                    "while kiebot runs), check the copy (integrity, balance = sum of the "
                    "ledger) and move it into place. Postgres: print the pg_dump and pg_restore "
                    "commands to use, password masked.")
    backup.add_argument("path", type=Path,
                        help="the backup file to write, or a directory to write "
                             "kiebot-<UTC time>.sqlite3 into")
    backup.add_argument("--force", action="store_true", help="overwrite an existing file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from bot.config import SettingsError  # pydantic only

    try:
        if args.command == "run":
            return _run(args.role)
        if args.command == "backup":
            from kiebot.backup import backup_command

            return backup_command(args.path, force=args.force)
        return _migrate(args.sql)
    except SettingsError as exc:
        _refuse(exc.lines)
        return EXIT_CONFIG
    except StartRefused as exc:
        _refuse(exc.lines)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _refuse(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def _run(role: str | None) -> int:
    from bot.config import load_settings

    from kiebot.preflight import check_port

    settings = load_settings()  # before aiogram, SQLAlchemy and the handlers are imported
    check_port(settings.server_host, settings.server_port, settings.port_variable)
    import asyncio

    from kiebot.serve import serve

    return asyncio.run(serve(settings, role))


def _migrate(sql: bool) -> int:
    import asyncio

    if sql:
        from migrations import runner

        print(runner.postgres_sql())
        return 0
    from bot.config import load_database_settings

    settings = load_database_settings()
    from kiebot.serve import migrate

    return asyncio.run(migrate(settings))


if __name__ == "__main__":
    sys.exit(main())
