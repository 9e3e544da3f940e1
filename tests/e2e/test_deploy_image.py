"""The deploy files exercised with the real tools this machine has. The image's command and
healthcheck, run the way Docker runs them (no Docker daemon here):
the Dockerfile's CMD as a child process with the image's ENV under the stack's settings (the
fake Telegram and the KIE emulator), and its HEALTHCHECK command as Docker would exec it — failing
before the bot listens, passing once it does, failing again after SIGTERM, which ends the CMD
with status 0."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from testkit.stack import LocalStack

from tests.conftest import free_port, wait_until
from tests.deploy_files import (
    SYSTEMD_UNIT,
    dockerfile_stages,
    exec_form,
    healthcheck,
    systemd_unit,
)

VENV_BIN = str(Path(sys.executable).parent)  # where `kiebot` and `python` are, as in the image


async def exec_status(argv: list[str], env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    return await asyncio.wait_for(proc.wait(), 30)


async def test_image_cmd_serves_and_its_healthcheck_follows_it(tmp_path):
    image = dockerfile_stages()[-1]
    cmd = exec_form(image.last("CMD"))
    _, check = healthcheck(image)
    port = free_port()
    async with LocalStack(tmp_path / "stack", webhook=False, in_process=False) as stack:
        # The image's ENV first, then what `docker run --env-file` / compose would pass; the
        # image's own SERVER_HOST (0.0.0.0) is kept, PATH finds this venv as the image's.
        env = {**image.env(), "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        env.update({k: v for k, v in stack.env().items() if k != "SERVER_HOST"})
        env["SERVER_PORT"] = str(port)
        workdir = tmp_path / "app"  # the image's WORKDIR
        workdir.mkdir()
        assert await exec_status(check, env) != 0  # nothing listens yet

        log = (tmp_path / "kiebot.log").open("wb")
        bot = await asyncio.create_subprocess_exec(*cmd, cwd=workdir, env=env, stdout=log,
                                                   stderr=asyncio.subprocess.STDOUT)
        try:
            def ready() -> bool:
                assert bot.returncode is None, (tmp_path / "kiebot.log").read_text()
                return b"kiebot ready" in (tmp_path / "kiebot.log").read_bytes()

            await wait_until(ready, timeout=120, interval=0.05)
            assert await exec_status(check, env) == 0
            # The image's ENV reached the bot: it listens on every interface, not only loopback.
            assert b"host=0.0.0.0" in (tmp_path / "kiebot.log").read_bytes()
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
            status = await asyncio.wait_for(bot.wait(), 60)
            log.close()
        assert status == 0, (tmp_path / "kiebot.log").read_text()
        assert await exec_status(check, env) != 0


def test_systemd_accepts_the_unit(tmp_path):
    """`systemd-analyze verify` parses the unit as systemd will (unknown keys, bad values and a
    missing ExecStart binary are reported); /opt/kiebot is moved under tmp_path with a stand-in
    `kiebot` executable, as `make .venv/.installed` would leave it."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    workdir = systemd_unit()["Service"]["WorkingDirectory"]
    home = tmp_path / "kiebot"
    executable = home / ".venv" / "bin" / "kiebot"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    unit = tmp_path / "kiebot.service"
    unit.write_text(SYSTEMD_UNIT.read_text().replace(workdir, str(home)))
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
