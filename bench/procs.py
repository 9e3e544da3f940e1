"""Child processes of a benchmark run, and what /proc says about them.

Every child is registered in `Children`; `kill_all()` ends them on any exit path (the CLI calls it
in a `finally`, and an atexit hook catches the rest). The fakes' children also get
PR_SET_PDEATHSIG, so they die with a driver that was killed outright.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1
# The checkout bench/ runs from: children find bench and testkit there whatever their cwd.
ROOT = Path(__file__).resolve().parents[1]
_URL = re.compile(rb"http://127\.0\.0\.1:\d+")
# Only bounds a hang: a child on a loaded 2-core machine can need several seconds to import.
START_TIMEOUT_S = 60.0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class Children:
    """The pids this driver started and has not reaped yet."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        atexit.register(self.kill_all)

    def add(self, pid: int) -> None:
        self.pids.add(pid)

    def discard(self, pid: int) -> None:
        self.pids.discard(pid)

    def kill_all(self) -> None:
        for pid in list(self.pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self.pids.discard(pid)


CHILDREN = Children()
_DRAINS: set[asyncio.Task[None]] = set()


async def start_child(args: list[str], *, log: Path, env: dict[str, str] | None = None,
                      ready: bytes | None = None) -> tuple[asyncio.subprocess.Process, str]:
    """Start `python <args>`; return it and the first loopback URL it prints (or the line with
    `ready`). Output goes to `log`, and the child runs in log's directory. Raises with the log's
    tail if it exits or stalls first."""
    out = open(log, "ab")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=out, cwd=log.parent,
        env={**os.environ, **(env or {}), "PYTHONPATH": path}, preexec_fn=_die_with_parent,
    )
    out.close()
    CHILDREN.add(proc.pid)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{args[1]} exited before it was ready:\n{tail(log)}")
                with open(log, "ab") as f:
                    f.write(line)
                found = _URL.search(line) if ready is None else (line if ready in line else None)
                if found:
                    url = found.group(0).decode() if ready is None else ""
                    break
    except BaseException:
        await stop_child(proc)
        raise
    drain = asyncio.get_running_loop().create_task(_drain(proc.stdout, log))
    _DRAINS.add(drain)  # the loop keeps only weak references to tasks
    drain.add_done_callback(_DRAINS.discard)
    return proc, url


async def _drain(stream: asyncio.StreamReader, log: Path) -> None:
    with open(log, "ab") as f:
        while line := await stream.readline():
            f.write(line)


async def stop_child(proc: Any, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; always reaped and unregistered."""
    try:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    finally:
        CHILDREN.discard(proc.pid)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (not its children), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # After "pid (comm)": state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssPeak:
    """Samples a process's RSS every `interval` seconds in the background; `.peak` in MB."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> RssPeak:
        self.peak = rss_mb(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            self.peak = max(self.peak, rss_mb(self.pid))
        except (OSError, RuntimeError):
            pass

    async def _sample(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return
            await asyncio.sleep(self.interval)
