"""The integration tier's promise: no child processes (tests/integration/conftest.py)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.integration.conftest import ChildProcessInIntegrationTest


def test_subprocess_is_refused():
    with pytest.raises(ChildProcessInIntegrationTest):
        subprocess.run(["true"])


async def test_asyncio_subprocess_is_refused():
    with pytest.raises(ChildProcessInIntegrationTest):
        await asyncio.create_subprocess_exec("true")
