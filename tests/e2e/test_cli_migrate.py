"""`kiebot migrate` needs only DATABASE_URL, and a database it cannot reach is a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run(
        [sys.executable, "-m", "kiebot", *args], cwd=cwd, env=clean,
        capture_output=True, text=True, timeout=120,
    )


def test_migrate_creates_sqlite_schema_without_bot_settings(tmp_path):
    first = _run(["migrate"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "schema upgraded" in first.stdout
    assert (tmp_path / "data" / "kiebot.sqlite3").exists()
    second = _run(["migrate"], tmp_path)
    assert second.returncode == 0 and "already up to date" in second.stdout


def test_unreachable_database_exits_3_without_traceback_or_password(tmp_path):
    url = f"postgresql://postgres:hunter2-secret@127.0.0.1:{free_port()}/nowhere"
    proc = _run(["migrate"], tmp_path, DATABASE_URL=url)
    assert proc.returncode == 3
    assert "database error" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "hunter2-secret" not in proc.stderr + proc.stdout
