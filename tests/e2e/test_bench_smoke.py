"""`python -m bench` at a tiny size: it runs, prints every figure beside its goal, produces sane
figures, and leaves no process behind. Not a timing test: the numbers' size is not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Bounds a hang only: the tiny run takes well under a minute on an idle 2-core machine.
TIMEOUT_S = 280


def processes_under(directory: Path) -> list[int]:
    """Pids whose working directory is inside `directory` (every bench child runs in its run's
    directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(directory)):
            found.append(int(proc.name))
    return found


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_tiny_bench_run_prints_sane_figures_with_their_goals(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    args = [sys.executable, "-m", "bench", "--only", "updates", "--only", "delivery",
            "--users", "20", "--chats", "5", "--repeat", "1"]
    text = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert text.returncode in (0, 1), text.stderr[-3000:]  # 1: some goal not met, not a crash
    out = text.stdout
    assert out.startswith("machine: ") and "aiogram" in out.splitlines()[0]
    assert "FAILED" not in out, out
    updates_line = next(line for line in out.splitlines() if line.startswith("updates/s sqlite"))
    assert "vs bare aiogram" in updates_line and "goal >= 50 %" in updates_line
    assert " PASS" in updates_line or " FAIL" in updates_line
    words = updates_line.split()  # updates/s sqlite <kiebot> vs bare aiogram <echo> = <ratio> % …
    assert float(words[2]) > 0 and float(words[6]) > 0
    assert any(line.startswith("delivery rate") and "goal >= 90 %" in line for line in out.splitlines())
    assert not processes_under(tmp_path), "the bench left processes behind"

    machine = subprocess.run(args[:3] + ["--only", "delivery", "--chats", "5", "--repeat", "1", "--json"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert machine.returncode in (0, 1), machine.stderr[-3000:]
    report = json.loads(machine.stdout)
    assert report["machine"]["cores"] >= 1 and report["db"] == "sqlite"
    figures = {f["name"]: f for f in report["measures"]["delivery"]}
    rate = figures["delivery rate"]
    assert rate["value"] > 0 and rate["base"] == 30 and rate["verdict"] in ("PASS", "FAIL")
    assert figures["results not delivered"]["value"] == 0
    assert all(f["error"] is None for f in figures.values())
    assert not processes_under(tmp_path)
