"""`kiebot backup PATH`: a consistent copy of the database while the bot keeps running.

SQLite: `sqlite3.Connection.backup` copies the live file in one step under one read
transaction (WAL: writers go on meanwhile), into a hidden file beside PATH; the copy is checked
(`PRAGMA integrity_check`, and balance = Σ ledger for every user, as /ledgercheck checks it),
switched to a single self-contained file (journal_mode=DELETE), synced and only then renamed to
PATH, so PATH is either a whole checked backup or absent. Restoring is copying the file back
while kiebot is stopped (README "Operate").

Postgres: the bot does not dump it; the command prints the pg_dump / pg_restore commands for
DATABASE_URL with the password left out.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from bot.config import load_database_settings

from kiebot.preflight import StartRefused

EXIT_CHECK_FAILED = 1
# libpq parameters worth keeping from DATABASE_URL's query (the rest are SQLAlchemy's).
LIBPQ_PARAMS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name",
                "connect_timeout", "options", "target_session_attrs"}


def backup_command(path: Path, *, force: bool = False) -> int:
    settings = load_database_settings()
    url = settings.database_url
    if url.split("://", 1)[0].lower().startswith("postgres"):
        print(postgres_instructions(url, path))
        return 0
    source = sqlite_file(url)
    target = backup_target(path)
    if target.exists() and not force:
        raise StartRefused([f"backup: {target} already exists (--force overwrites it)"])
    if target.resolve() == source.resolve():
        raise StartRefused(["backup: PATH is the live database itself"])
    report = backup_sqlite(source, target)
    print(f"backup written: {target} ({report.size} bytes; {report.users} users, "
          f"{report.ledger_rows} ledger rows; integrity ok)")
    if report.mismatches:
        print(f"backup: {len(report.mismatches)} users' balance differs from their ledger, as "
              f"in the live database (see /ledgercheck): "
              + ", ".join(f"{u} has {b}, ledger says {s}" for u, b, s in report.mismatches[:5]),
              file=sys.stderr)
        return EXIT_CHECK_FAILED
    print("balance = sum of the ledger for every user")
    return 0


def sqlite_file(url: str) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(url).database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise StartRefused(["DATABASE_URL: names no SQLite file to back up"])
    source = Path(database).expanduser()
    if not source.is_file():
        raise StartRefused([f"DATABASE_URL: no SQLite database at {source} (kiebot run or "
                            f"kiebot migrate creates it)"])
    return source


def backup_target(path: Path) -> Path:
    if path.is_dir():
        return path / f"kiebot-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.sqlite3"
    if not path.parent.is_dir():
        raise StartRefused([f"backup: the folder {path.parent} does not exist"])
    return path


class Report:
    def __init__(self, size: int, users: int, ledger_rows: int,
                 mismatches: list[tuple[int, int, int]]) -> None:
        self.size, self.users, self.ledger_rows = size, users, ledger_rows
        self.mismatches = mismatches


def backup_sqlite(source: Path, target: Path) -> Report:
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        # mode=rw: never create an empty database where the live one should be.
        live = sqlite3.connect(f"file:{quote(str(source.resolve()))}?mode=rw", uri=True,
                               timeout=30)
        try:
            copy = sqlite3.connect(partial)
            try:
                live.backup(copy)  # pages=-1: one step, one consistent snapshot
                (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
                if verdict != "ok":
                    raise StartRefused([f"backup: the copy failed SQLite's integrity check "
                                        f"({verdict}); nothing written"], EXIT_CHECK_FAILED)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                users, ledger_rows = _counts(copy)
            finally:
                copy.close()
        finally:
            live.close()
        mismatches = asyncio.run(_ledger_check(partial)) if users is not None else []
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return Report(target.stat().st_size, users or 0, ledger_rows or 0, mismatches)


def _counts(conn: sqlite3.Connection) -> tuple[int | None, int | None]:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"users", "credit_ledger"} <= tables:
        return None, None  # not migrated yet: nothing to check
    (users,) = conn.execute("SELECT count(*) FROM users").fetchone()
    (rows,) = conn.execute("SELECT count(*) FROM credit_ledger").fetchone()
    return users, rows


async def _ledger_check(path: Path) -> list[tuple[int, int, int]]:
    """The same check as /ledgercheck (Repository.ledger_check), on the copy."""
    from storage.db import create_engine
    from storage.repository import Repository

    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        return await Repository(engine).ledger_check()
    finally:
        await engine.dispose()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def postgres_instructions(url: str, path: Path) -> str:
    """pg_dump / pg_restore for DATABASE_URL, the password replaced by a PGPASSWORD placeholder."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k in LIBPQ_PARAMS])
    dsn = urlunsplit(("postgresql", netloc, parts.path, query, ""))
    dump = path / f"kiebot-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump" if path.is_dir() else path
    password = "PGPASSWORD='***' " if parts.password else ""
    return "\n".join([
        "DATABASE_URL is Postgres: kiebot does not dump it itself. Back it up with pg_dump",
        "(a consistent snapshot while the bot runs; use a pg_dump at least as new as the",
        "server; *** is the password in DATABASE_URL):",
        "",
        f"  {password}pg_dump --format=custom --no-owner --no-privileges \\",
        f"      --dbname='{dsn}' --file='{dump}'",
        "",
        "Restore into an empty database (then point DATABASE_URL at it):",
        "",
        f"  {password}pg_restore --no-owner --no-privileges \\",
        f"      --dbname='<empty database URL>' '{dump}'",
        "",
        "Supabase: dump through the direct connection or the session pooler (port 5432), not the",
        "transaction pooler (port 6543); paid plans also keep daily backups of their own.",
    ])
