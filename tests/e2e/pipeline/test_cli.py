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
