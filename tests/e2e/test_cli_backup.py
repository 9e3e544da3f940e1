"""`kiebot backup PATH` copies a live SQLite database while money keeps moving, and the copy,
restored into a fresh place, is a whole kiebot database whose every balance equals the sum of
its ledger. For Postgres it prints the pg_dump command, password left out."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from migrations.runner import ensure_schema
from storage.db import create_engine
from storage.repository import Repository
from sqlalchemy.engine import make_url
from storage.schema import credit_ledger

from tests.conftest import wait_until
from tests.e2e.test_cli_config import clean_env, refusal_lines

USERS = 20
ADMIN = 1


async def kiebot(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kiebot", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


async def ledger_rows(repository: Repository) -> int:
    async with repository._read() as conn:
        count = sa.select(sa.func.count()).select_from(credit_ledger)
        return (await conn.execute(count)).scalar_one()


def balances_and_sums(path: Path) -> list[tuple[int, int, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT u.id, u.balance, COALESCE((SELECT SUM(delta) FROM credit_ledger l"
            " WHERE l.user_id = u.id), 0) FROM users u ORDER BY u.id").fetchall()


async def test_backup_of_a_live_database_restores_with_balance_equal_to_the_ledger(tmp_path):
    live = tmp_path / "live" / "kiebot.sqlite3"
    url = f"sqlite+aiosqlite:///{live}"
    engine = create_engine(url)
    await ensure_schema(engine)
    repository = Repository(engine)
    for user_id in range(100, 100 + USERS):
        await repository.register_user(user_id, username=None, first_name="U", last_name=None,
                                       language="en", signup_bonus=50)

    stop = asyncio.Event()
    moves = 0

    async def keep_moving_money() -> None:
        # What a running bot does to the ledger: balance and ledger change in one transaction.
        nonlocal moves
        while not stop.is_set():
            user_id = 100 + moves % USERS
            delta = (moves % 7) - 3 or 1
            await repository.admin_adjust(user_id, delta if moves % 5 else abs(delta),
                                          admin_id=ADMIN, note="backup test")
            moves += 1

    writer = asyncio.create_task(keep_moving_money())
    try:
        await wait_until(lambda: moves >= 20, timeout=60)
        before = await ledger_rows(repository)
        backup_dir = tmp_path / "backups"
        backup_dir.mkdir()
        proc = await kiebot("backup", str(backup_dir / "kiebot.sqlite3"), cwd=tmp_path,
                            env=clean_env(DATABASE_URL=url))
        moves_during = moves
        await wait_until(lambda: moves >= moves_during + 5, timeout=60)
    finally:
        stop.set()
        await writer
    after = await ledger_rows(repository)
    await engine.dispose()

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "integrity ok" in proc.stdout and "balance = sum of the ledger" in proc.stdout
    backup = backup_dir / "kiebot.sqlite3"
    assert [p.name for p in backup_dir.iterdir()] == ["kiebot.sqlite3"]  # no partial file left

    # Restore: a fresh place, a plain file copy, as README "Operate" says.
    restored = tmp_path / "restored" / "data" / "kiebot.sqlite3"
    restored.parent.mkdir(parents=True)
    shutil.copyfile(backup, restored)
    migrate = await kiebot("migrate", cwd=restored.parent.parent,
                           env=clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{restored}"))
    assert migrate.returncode == 0 and "already up to date" in migrate.stdout, migrate.stderr

    rows = balances_and_sums(restored)
    assert len(rows) == USERS
    assert all(balance == total for _, balance, total in rows), rows
    restored_engine = create_engine(f"sqlite+aiosqlite:///{restored}")
    try:
        restored_repository = Repository(restored_engine)
        assert await restored_repository.ledger_check() == []
        copied = await ledger_rows(restored_repository)
    finally:
        await restored_engine.dispose()
    # A snapshot taken while the writer ran: everything committed before, nothing after.
    assert before <= copied <= after
    assert after > before  # the money really moved while the backup was taken


async def test_backup_into_a_folder_names_the_file_and_never_overwrites(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'kiebot.sqlite3'}"
    await ensure_schema(url)
    folder = tmp_path / "backups"
    folder.mkdir()
    first = await kiebot("backup", str(folder), cwd=tmp_path, env=clean_env(DATABASE_URL=url))
    assert first.returncode == 0, first.stderr
    (written,) = folder.iterdir()
    assert written.name.startswith("kiebot-") and written.suffix == ".sqlite3"
    again = await kiebot("backup", str(written), cwd=tmp_path, env=clean_env(DATABASE_URL=url))
    assert again.returncode == 2
    assert refusal_lines(again.stderr) == [
        f"backup: {written} already exists (--force overwrites it)"]
    forced = await kiebot("backup", "--force", str(written), cwd=tmp_path,
                          env=clean_env(DATABASE_URL=url))
    assert forced.returncode == 0, forced.stderr


async def test_backup_of_a_missing_database_is_one_line(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'nowhere.sqlite3'}"
    proc = await kiebot("backup", str(tmp_path / "b.sqlite3"), cwd=tmp_path,
                        env=clean_env(DATABASE_URL=url))
    assert proc.returncode == 2
    (line,) = refusal_lines(proc.stderr)
    assert line.startswith("DATABASE_URL: no SQLite database at ")
    assert not (tmp_path / "nowhere.sqlite3").exists()  # not created by looking


async def test_postgres_backup_prints_pg_dump_without_the_password(tmp_path):
    url = "postgresql+asyncpg://kiebot:pg-secret-pw@db.example.com:5432/kiebot?sslmode=require"
    proc = await kiebot("backup", str(tmp_path / "kiebot.dump"), cwd=tmp_path,
                        env=clean_env(DATABASE_URL=url))
    assert proc.returncode == 0, proc.stderr
    assert "pg-secret-pw" not in proc.stdout + proc.stderr
    assert ("pg_dump --format=custom --no-owner --no-privileges" in proc.stdout)
    assert ("--dbname='postgresql://kiebot@db.example.com:5432/kiebot?sslmode=require'"
            in proc.stdout)
    assert f"--file='{tmp_path / 'kiebot.dump'}'" in proc.stdout
    assert "PGPASSWORD='***'" in proc.stdout and "pg_restore" in proc.stdout
    assert not os.path.exists(tmp_path / "kiebot.dump")


@pytest.mark.postgres
async def test_the_printed_pg_dump_and_pg_restore_commands_round_trip_a_live_database(
        tmp_path, pg_url):
    from tests.conftest import create_pg_database, drop_pg_database, require_tool

    require_tool("pg_dump")
    require_tool("pg_restore")
    source = await create_pg_database(pg_url)
    target = await create_pg_database(pg_url)
    try:
        engine = create_engine(source)
        await ensure_schema(engine)
        repository = Repository(engine)
        for user_id in range(100, 110):
            await repository.register_user(user_id, username=None, first_name="U",
                                           last_name=None, language="en", signup_bonus=50)
            await repository.admin_adjust(user_id, user_id % 7 + 1, admin_id=ADMIN, note="pg")
        # The URL as an operator writes it, with a password (the test server trusts, so any
        # password connects): the printed commands must not show it.
        url = make_url(source).set(drivername="postgresql", password="pg-backup-secret")
        proc = await kiebot("backup", str(tmp_path / "kiebot.dump"), cwd=tmp_path,
                            env=clean_env(DATABASE_URL=url.render_as_string(hide_password=False)))
        assert proc.returncode == 0, proc.stderr
        assert "pg-backup-secret" not in proc.stdout
        commands = [line.strip() for line in _joined(proc.stdout) if "PGPASSWORD=" in line]
        dump, restore = commands
        restore = restore.replace("<empty database URL>", make_url(target).set(
            drivername="postgresql").render_as_string(hide_password=False))
        for command in (dump, restore):
            done = await asyncio.create_subprocess_shell(
                command.replace("PGPASSWORD='***'", "PGPASSWORD='pg-backup-secret'"),
                cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(done.communicate(), 120)
            assert done.returncode == 0, err.decode()
        expected = await ledger_rows(repository)
        await engine.dispose()

        restored = create_engine(target)
        try:
            restored_repository = Repository(restored)
            assert await restored_repository.ledger_check() == []
            assert await ledger_rows(restored_repository) == expected == 20
            assert (await restored_repository.get_user(105)).balance == 50 + 105 % 7 + 1
        finally:
            await restored.dispose()
    finally:
        await drop_pg_database(pg_url, source)
        await drop_pg_database(pg_url, target)


def _joined(text: str) -> list[str]:
    """The printed shell commands with their `\\` continuation lines joined."""
    lines, current = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1]
            continue
        lines.append(current + line)
        current = ""
    return lines
