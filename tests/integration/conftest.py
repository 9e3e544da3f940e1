"""The integration tier: real SQLite, Postgres and Redis, HTTP servers in this process on
loopback, and no child processes — a test that starts one belongs in tests/e2e. The guard below
refuses subprocess.Popen and asyncio's subprocess creation for every test of the tier."""

from __future__ import annotations

import asyncio
import subprocess

import pytest


class ChildProcessInIntegrationTest(AssertionError):
    """An integration test started a child process: it belongs in tests/e2e."""


@pytest.fixture(autouse=True)
def no_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object):
        raise ChildProcessInIntegrationTest(f"integration tests start no processes ({args[:1]!r})")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse)
    monkeypatch.setattr(asyncio, "create_subprocess_shell", refuse)

