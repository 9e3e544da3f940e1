"""`kiebot` / `python -m kiebot`: configuration errors are a clear message and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

from bot.config import Settings


def _clean_env() -> dict[str, str]:
    names = {(f.alias or n).upper() for n, f in Settings.model_fields.items()}
    return {k: v for k, v in os.environ.items() if k.upper() not in names}


def test_missing_settings_exit_2_without_traceback(tmp_path):
    env = {**_clean_env(), "KIE_CALLBACK_SECRET": "short"}
    proc = subprocess.run([sys.executable, "-m", "kiebot", "run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "BOT_TOKEN: is required but not set" in proc.stderr
    assert "KIE_CALLBACK_SECRET" in proc.stderr and "short" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_migrate_sql_prints_postgres_ddl(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kiebot", "migrate", "--sql"], cwd=tmp_path,
                          env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "CREATE TABLE generations" in proc.stdout


def test_unreachable_redis_refuses_the_start_in_one_line(tmp_path):
    from tests.conftest import free_port

    password = "hunter2-redis-password"
    env = {**_clean_env(), "BOT_TOKEN": "123456:" + "A" * 35, "KIE_API_KEY": "kie-key-0123456789",
           "KIE_CALLBACK_SECRET": "0123456789abcdef" * 2,
           "REDIS_URL": f"redis://:{password}@127.0.0.1:{free_port()}/0",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'kiebot.sqlite3'}",
           "MEDIA_DIR": str(tmp_path / "media"), "SERVER_PORT": str(free_port())}
    proc = subprocess.run([sys.executable, "-m", "kiebot", "run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("REDIS_URL: Redis at redis://:***@127.0.0.1:")
    assert "unreachable" in lines[0] and password not in proc.stderr
    # Refused before anything was done: no database created, nothing served.
    assert not (tmp_path / "kiebot.sqlite3").exists()
