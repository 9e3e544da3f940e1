"""LocalStack: the real bot wired to the KIE emulator and the fake Telegram on loopback.

Used by the end-to-end tests, the conversation tests and the demo:

    async with LocalStack(tmp_path) as stack:
        stack.telegram ...      # FakeTelegram (users, chats, faults)
        stack.kie ...           # KieEmulator (tasks, faults)
        stack.app ...           # the running App (in-process)

`LocalStack(..., in_process=False)` starts the fakes only; `start_process()` then runs
`python -m kiebot run` as a child with the same settings (env), so tests can SIGKILL it; it
returns once the child logged its readiness line.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiebot.app import App, build_app
from bot.config import Settings, load_settings


# What `kiebot run` logs once it serves (kiebot/cli.py); start_process waits for it.
READY_LINE = b"kiebot ready"
# Only bounds a hang: a child on a loaded 2-core machine was seen needing 11 s to get there.
READY_TIMEOUT_S = 120.0


# A port probed free may be taken by another worker before the app binds it: try a few.
BIND_ATTEMPTS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class _InFlight:
    count: int = 0


def _count_updates_in_flight(dispatcher: Any) -> _InFlight:
    """Count the updates the dispatcher is handling. Wraps its entry points on this instance:
    the webhook handler handles in the background (feed_raw_update in a task started before
    it answers Telegram) and polling starts a task per update (feed_update), so once the fake
    has handed over an update, the count covers it until its handler returned."""
    in_flight = _InFlight()

    def counted(feed):
        async def feed_counted(*args: Any, **kwargs: Any) -> Any:
            in_flight.count += 1
            try:
                return await feed(*args, **kwargs)
            finally:
                in_flight.count -= 1
        return feed_counted

    for name in ("feed_raw_update", "feed_webhook_update", "feed_update"):
        setattr(dispatcher, name, counted(getattr(dispatcher, name)))
    return in_flight


@dataclass
class Child:
    """A `kiebot run` started by LocalStack.start_child."""

    process: asyncio.subprocess.Process
    log_path: Path
    output: asyncio.Task[None]

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        await self.output

    async def terminate(self, timeout: float = 20.0) -> int | None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self.output
        return self.process.returncode


class LocalStack:
    def __init__(
        self,
        directory: str | os.PathLike | None = None,
        *,
        database_url: str | None = None,
        webhook: bool = True,
        hmac_key: str | None = None,
        in_process: bool = True,
        emulator_options: dict[str, Any] | None = None,
        telegram_options: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        presenter: Any = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kiebot-stack-")
            directory = self._tmp.name
        self.directory = Path(directory)
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.directory / 'kiebot.sqlite3'}"
        self.webhook = webhook
        self.hmac_key = hmac_key
        self.in_process = in_process
        self._emulator_options = emulator_options or {}
        self._telegram_options = telegram_options or {}
        self._overrides = settings or {}
        self.presenter = presenter  # None: the conversation's presenter (handlers.build_presenter)
        self.bot_token = f"{secrets.randbelow(9_000_000) + 1_000_000}:{secrets.token_urlsafe(24)}"
        self.kie_api_key = "kie-" + secrets.token_hex(16)
        self.callback_secret = secrets.token_hex(24)
        self.port = _free_port()
        self.kie: Any = None
        self.telegram: Any = None
        self.app: App | None = None
        self.settings: Settings | None = None
        self.process: asyncio.subprocess.Process | None = None
        self._output: asyncio.Task[None] | None = None
        self._updates_in_flight = _InFlight()
        self.log_path = self.directory / "kiebot.log"
        self._children: list[Child] = []

    # -- settings -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment variables describing this stack (what `kiebot run` reads)."""
        values: dict[str, Any] = {
            "BOT_TOKEN": self.bot_token,
            "TELEGRAM_API_BASE_URL": self.telegram.base_url,
            "KIE_API_KEY": self.kie_api_key,
            "KIE_MARKET_BASE_URL": self.kie.market_url,
            "KIE_UPLOAD_BASE_URL": self.kie.upload_url,
            "KIE_CALLBACK_SECRET": self.callback_secret,
            "KIE_RESULT_HOSTS": "127.0.0.1",
            "SERVER_HOST": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "DATABASE_URL": self.database_url,
            "MEDIA_DIR": str(self.directory / "media"),
            "JOB_INTERVAL_SECONDS": "0.25",
            "LEASE_SECONDS": "6",
            "CALLBACK_GRACE_SECONDS": "3",
            "POLL_INITIAL_SECONDS": "0.3",
            "KIE_TIMEOUT_SECONDS": "5",
            "SIGNUP_BONUS": "100",
            "LOG_LEVEL": "INFO",
        }
        # Always set (blank = off) so a developer's own environment cannot leak in.
        values["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{self.port}" if self.webhook else ""
        values["KIE_WEBHOOK_HMAC_KEY"] = self.hmac_key or ""
        values["REDIS_URL"] = ""
        values["PROCESS_ROLE"] = "all"  # start_process(role=) / start_child(role=) choose others
        values["SENTRY_DSN"] = values["METRICS_TOKEN"] = ""  # never a developer's own
        for key, value in self._overrides.items():
            values[key.upper()] = value
        return {k: ("" if v is None else str(v)) for k, v in values.items()}

    def build_settings(self) -> Settings:
        return load_settings(_env_file=None, **self.env())

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> LocalStack:
        from testkit.telegram import FakeTelegram
        from testkit.kie import KieEmulator

        self.kie = KieEmulator(self.kie_api_key, hmac_key=self.hmac_key, **self._emulator_options)
        await self.kie.start()
        self.telegram = FakeTelegram(self.bot_token, **self._telegram_options)
        await self.telegram.start()
        self.settings = self.build_settings()
        if self.in_process:
            await self.start_app()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            for child in self._children:
                await child.terminate()
            if self.process is not None:
                await self.terminate_process()
            if self.app is not None:
                await self.stop_app()
        finally:
            if self.telegram is not None:
                await self.telegram.stop()
            if self.kie is not None:
                await self.kie.stop()
            if self._tmp is not None:
                self._tmp.cleanup()

    async def start_app(self) -> App:
        for attempt in range(1, BIND_ATTEMPTS + 1):
            self.app = build_app(self.settings, presenter=self.presenter)
            self.app.polling_timeout = 1
            self._updates_in_flight = _count_updates_in_flight(self.app.dispatcher)
            try:
                await self.app.start()
                return self.app
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == BIND_ATTEMPTS:
                    raise
                # Another test process took the port between _free_port() and this bind (tests
                # run in parallel workers): undo the half start and move to a fresh port.
                app, self.app = self.app, None
                await app.stop()
                self.port = _free_port()
                self.settings = self.build_settings()
        raise AssertionError("unreachable")

    async def stop_app(self) -> None:
        if self.app is not None:
            app, self.app = self.app, None
            await app.stop()

    async def settle(self, *, passes: int = 2, timeout: float = 30.0) -> None:
        """Let everything under way finish, then run every pipeline stage `passes` more times:
        KIE's callbacks sent, Telegram's updates delivered and handled, the extra passes run and
        every Telegram call answered. A test that asserts "nothing more happened" asserts it
        after this, never after a nap. In-process stacks only."""
        if self.app is None:
            raise RuntimeError("settle() needs the in-process app")
        from storage.models import Stage

        await self.kie.drain_callbacks()
        await self._wait_updates_handled(timeout)
        for _ in range(passes):
            for stage in Stage:
                await self.app.generations.run_pass(stage)
        await self.app.jobs.drain(timeout)
        await self._wait_updates_handled(timeout)
        await self.telegram.wait_idle(timeout)

    async def _wait_updates_handled(self, timeout: float) -> None:
        """Until Telegram has nothing to hand over, nothing is inside the dispatcher and the
        inbox holds no unhandled update (stored, claimed, handled but not yet marked)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (self.telegram.updates.pending or self._updates_in_flight.count
               or await self._inbox_busy()):
            if loop.time() > end:
                raise TimeoutError(f"updates still pending or being handled after {timeout}s")
            await asyncio.sleep(0.01)

    async def _inbox_busy(self) -> bool:
        app = self.app
        if app is None or app.drainer is None:
            return False
        return app.drainer.busy or await app.repository.inbox_unhandled() > 0

    async def restart(self) -> App:
        await self.stop_app()
        return await self.start_app()

    # -- subprocess mode (crash tests) ---------------------------------------------------------

    async def start_process(self, ready_timeout: float = READY_TIMEOUT_S, *,
                            role: str | None = None,
                            env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
        """Run `python -m kiebot run` with this stack's settings; return once it logged READY_LINE.
        `role` adds `--role <role>`; `env` overrides settings for this process only.

        Its output is copied to log_path (appended across restarts). Raises if the child exits
        first, or kills it and raises if it is not ready within ready_timeout."""
        if self.process is not None:
            raise RuntimeError("a kiebot process is already running; kill or terminate it first")
        env = {**os.environ, **self.env(), **(env or {})}
        if env["LOG_LEVEL"].upper() not in {"DEBUG", "INFO"}:
            raise ValueError("start_process waits for an INFO line: set LOG_LEVEL to INFO or DEBUG")
        argv = ["-m", "kiebot", "run"] + (["--role", role] if role else [])
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv, env=env, cwd=str(self.directory),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, limit=1 << 20,
        )
        self.process = proc
        ready = asyncio.Event()
        self._output = asyncio.get_running_loop().create_task(self._copy_output(proc, ready))
        ready_seen = asyncio.ensure_future(ready.wait())
        try:
            await asyncio.wait({ready_seen, self._output}, timeout=ready_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready_seen.cancel()
        if ready.is_set():
            return proc
        if self._output.done():  # output closed before the line: the child is exiting
            code = await proc.wait()
            self.process = None
            raise RuntimeError(f"kiebot exited with {code} before it was ready:\n{self._log_tail()}")
        await self.kill_process()
        raise TimeoutError(f"kiebot not ready within {ready_timeout}s:\n{self._log_tail()}")

    async def start_child(self, *, role: str, env: dict[str, str] | None = None,
                          name: str = "child",
                          ready_timeout: float = READY_TIMEOUT_S) -> Child:
        """Another `kiebot run --role <role>` beside start_process's (several processes on one
        database); its output goes to <directory>/<name>.log. Stopped on exit if still running."""
        env = {**os.environ, **self.env(), **(env or {})}
        log_path = self.directory / f"{name}.log"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kiebot", "run", "--role", role, env=env,
            cwd=str(self.directory), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, limit=1 << 20,
        )
        ready = asyncio.Event()
        child = Child(proc, log_path, asyncio.get_running_loop().create_task(
            self._copy_output(proc, ready, log_path)))
        self._children.append(child)
        ready_seen = asyncio.ensure_future(ready.wait())
        try:
            await asyncio.wait({ready_seen, child.output}, timeout=ready_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready_seen.cancel()
        if not ready.is_set():
            await child.kill()
            raise RuntimeError(f"{name} not ready:\n{log_path.read_text(errors='replace')[-3000:]}")
        return child

    async def _copy_output(self, proc: asyncio.subprocess.Process, ready: asyncio.Event,
                           log_path: Path | None = None) -> None:
        assert proc.stdout is not None
        with open(log_path or self.log_path, "ab") as log:
            async for line in proc.stdout:
                log.write(line)
                log.flush()
                if READY_LINE in line:
                    ready.set()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) + f"\n(full log: {self.log_path})"

    async def _output_closed(self) -> None:
        if self._output is not None:
            output, self._output = self._output, None
            await output  # the child is gone: its pipe is at EOF, the copy ends

    async def kill_process(self) -> None:
        """SIGKILL: no cleanup at all, as in a power cut."""
        if self.process is None:
            return
        proc, self.process = self.process, None
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await self._output_closed()

    async def terminate_process(self, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        proc, self.process = self.process, None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await self._output_closed()
        return proc.returncode
