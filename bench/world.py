"""One run's world: the fake Telegram and the KIE emulator as child processes, a fresh database
(and Redis db), and the bot as a child `kiebot run` configured exactly as testkit's LocalStack
configures its own child (LocalStack.env and start_process are reused, not copied)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kie_client.callbacks import make_callback_token
from migrations.runner import upgrade
from storage.db import create_engine
from storage.repository import Repository
from testkit.stack import LocalStack
from .control import KieControl, TelegramControl
from .procs import CHILDREN, start_child, stop_child

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "kiebot_bench"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
REDIS_URL = "redis://127.0.0.1:6379/14"
# KIE credits the emulator starts with: enough that no measure runs out.
KIE_CREDITS = 1e9
_ERROR_LINE = re.compile(r"level=(ERROR|CRITICAL)|^Traceback", re.M)


@dataclass
class RunOptions:
    db: str = "sqlite"  # or "postgres": Postgres + Redis FSM + Redis shared limiters


async def reset_postgres() -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')
    finally:
        await conn.close()


async def drop_postgres() -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
    finally:
        await conn.close()


async def flush_redis() -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


class World:
    def __init__(self, directory: Path, options: RunOptions, *, webhook: bool = True,
                 settings: dict[str, Any] | None = None, database: bool = True) -> None:
        self.directory = directory
        self.database = database
        self.options = options
        self.postgres = options.db == "postgres"
        overrides = {"LOG_LEVEL": "INFO", "SIGNUP_BONUS": "100", **(settings or {})}
        if self.postgres:
            overrides["REDIS_URL"] = REDIS_URL
        database_url = PG_URL if self.postgres else f"sqlite+aiosqlite:///{directory / 'kiebot.sqlite3'}"
        self.stack = LocalStack(directory, database_url=database_url, webhook=webhook,
                                in_process=False, settings=overrides)
        self.tg: TelegramControl | None = None
        self.kie: KieControl | None = None
        self._fakes: list[Any] = []
        self._engine: Any = None
        self.repo: Repository | None = None
        self._workers: list[Any] = []

    @property
    def media_dir(self) -> Path:
        return Path(self.stack.env()["MEDIA_DIR"])

    @property
    def bot_pid(self) -> int:
        assert self.stack.process is not None, "the bot is not running"
        return self.stack.process.pid

    @property
    def telegram_pid(self) -> int:
        return self._fakes[0].pid

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.port}"

    def callback_url(self, generation_id: int) -> str:
        token = make_callback_token(self.stack.callback_secret, generation_id)
        return f"{self.public_url}/kie/callback/{generation_id}?token={token}"

    async def __aenter__(self) -> World:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.postgres and self.database:
            await reset_postgres()
            await flush_redis()
        tg, tg_url = await start_child(
            ["-m", "testkit.telegram", "--port", "0", "--token", self.stack.bot_token],
            log=self.directory / "telegram.log")
        self._fakes.append(tg)
        kie, kie_url = await start_child(
            ["-m", "testkit.kie", "--port", "0", "--api-key", self.stack.kie_api_key,
             "--credits", str(KIE_CREDITS)], log=self.directory / "kie.log")
        self._fakes.append(kie)
        # LocalStack.env() reads only these URLs from its fakes.
        self.stack.telegram = SimpleNamespace(base_url=tg_url)
        self.stack.kie = SimpleNamespace(market_url=kie_url, upload_url=kie_url)
        self.tg, self.kie = TelegramControl(tg_url), KieControl(kie_url)
        if not self.database:
            return
        await upgrade(self.stack.database_url)
        self._engine = create_engine(self.stack.database_url)
        self.repo = Repository(self._engine)

    async def start_bot(self, role: str | None = None) -> int:
        await self.stack.start_process(role=role)
        CHILDREN.add(self.bot_pid)
        return self.bot_pid

    async def start_worker(self) -> int:
        """A `kiebot run --role worker` beside the bot (README "Running several processes"):
        it runs the pipeline's stages while the bot (`--role web`) answers HTTP."""
        child = await self.stack.start_child(role="worker", name="worker", env={"SERVER_PORT": "0"})
        self._workers.append(child)
        CHILDREN.add(child.process.pid)
        return child.process.pid

    async def stop_bot(self) -> None:
        if self.stack.process is not None:
            pid = self.stack.process.pid
            try:
                await self.stack.terminate_process()
            finally:
                CHILDREN.discard(pid)

    def bot_errors(self) -> int:
        """ERROR/CRITICAL lines and tracebacks in the bot's log (and its workers')."""
        found = 0
        for path in [self.stack.log_path] + [child.log_path for child in self._workers]:
            try:
                found += len(_ERROR_LINE.findall(path.read_text(errors="replace")))
            except OSError:
                pass
        return found

    async def __aexit__(self, *exc: object) -> None:
        try:
            for child in self._workers:
                try:
                    await child.terminate()
                finally:
                    CHILDREN.discard(child.process.pid)
            await self.stop_bot()
        finally:
            for proc in self._fakes:
                await stop_child(proc)
            self._fakes.clear()
            for client in (self.tg, self.kie):
                if client is not None:
                    await client.aclose()
            if self._engine is not None:
                await self._engine.dispose()
            if self.postgres and self.database:
                await drop_postgres()
