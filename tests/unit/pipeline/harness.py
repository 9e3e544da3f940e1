"""A real GenerationService over SQLite, with KIE, the file host and Telegram faked in memory.

`build_world` wires the parts the way kiebot/app.py build_app does, with one difference: every
clock and sleep is the test's FakeClock. Tests then drive `world.run(stage)` one pass at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kie_client.catalog import Catalog
from kie_client.client import KieClient
from kie_client.ratelimit import SlidingWindowLimiter
from migrations.runner import ensure_schema
from sqlalchemy.ext.asyncio import AsyncEngine
from storage.db import create_engine
from storage.media import LocalMediaStore
from storage.models import Generation, LedgerEntry
from storage.repository import Repository

from bot.delivery import ChatSender
from bot.downloads import SafeDownloader
from bot.services.generation import GenerationService
from bot.services.pipeline.complete import CallbackOutcome
from bot.services.pipeline.context import Pipeline, PipelineConfig
from testkit.presenter import PlainPresenter
from tests.unit.pipeline.fakes import (
    MARKET_URL,
    UPLOAD_URL,
    FakeClock,
    RecordingBot,
    ResultFiles,
    ScriptedKie,
    public_resolver,
)

USER_ID = CHAT_ID = 4242
SIGNUP_BONUS = 50
PUBLIC_BASE_URL = "https://bot.example"
CALLBACK_SECRET = "unit-callback-secret-0123456789abcdef"
PROMPT = "A lighthouse on a cliff at dusk"
MODEL = "seedream_45_t2i"  # 8⭐, text to image: no photo upload to script
PRICE = 8


@dataclass
class World:
    clock: FakeClock
    kie: ScriptedKie
    files: ResultFiles
    bot: RecordingBot
    repository: Repository
    media_root: Path
    generations: GenerationService
    config: PipelineConfig
    kicks: list[str] = field(default_factory=list)
    _closers: list = field(default_factory=list)

    async def start(self, request_key: str = "card-1", model_key: str = MODEL) -> Generation:
        started = await self.generations.start(
            user_id=USER_ID, chat_id=CHAT_ID, model_key=model_key, options={}, prompt=PROMPT,
            request_key=request_key,
        )
        return started.generation

    async def run(self, stage: str) -> int:
        return await self.generations.run_pass(stage)

    async def row(self, generation_id: int) -> Generation:
        g = await self.repository.get_generation(generation_id)
        assert g is not None
        return g

    async def callback(self, generation_id: int, task_id: str) -> CallbackOutcome:
        """KIE's callback for `task_id` arriving at /kie/callback/<generation_id> (the server
        checks the token first; that part is the server's own test)."""
        task = self.kie.tasks[task_id]
        # The route parses the body in the shape its URL names (?api=veo); market by default.
        payload = self.generations.parse_callback(task.api if task.api != "market" else None,
                                                  self.kie.callback_body(task_id))
        return await self.generations.accept_callback(generation_id, payload)

    async def balance(self) -> int:
        user = await self.repository.get_user(USER_ID)
        assert user is not None
        return user.balance

    async def ledger(self, generation_id: int) -> list[tuple[str, int]]:
        """(reason, delta) of the ledger rows of one generation, oldest first."""
        rows: list[LedgerEntry] = await self.repository.ledger(USER_ID, limit=100)
        return [(r.reason, r.delta) for r in reversed(rows) if r.generation_id == generation_id]

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.media_root.rglob("*") if p.is_file())

    async def snapshot(self, generation_id: int) -> dict:
        """Everything a pass could change, inside and outside: to compare before and after."""
        return {
            "row": await self.row(generation_id),
            "ledger": await self.ledger(generation_id),
            "balance": await self.balance(),
            "kie_tasks": json.dumps([vars(t) for t in self.kie.creates], sort_keys=True),
            "kie_reads": list(self.kie.record_reads),
            "downloads": list(self.files.requests),
            "files": self.stored_files(),
            "telegram": list(self.bot.methods),
        }

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()


async def build_world(tmp_path: Path, clock: FakeClock, **config: object) -> World:
    """Everything build_app wires for the pipeline, on fakes. `config` overrides PipelineConfig
    (default: webhook mode, so createTask carries a callback URL)."""
    engine: AsyncEngine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'kiebot.sqlite3'}")
    await ensure_schema(engine)  # the real migrations, ~40 ms on SQLite
    repository = Repository(engine)
    await repository.register_user(USER_ID, username="ann", first_name="Ann", last_name=None,
                                   language="en", signup_bonus=SIGNUP_BONUS, now=clock())

    settings = {"callback_secret": CALLBACK_SECRET, "public_base_url": PUBLIC_BASE_URL, **config}
    pipeline_config = PipelineConfig(**settings)  # type: ignore[arg-type]
    scripted_kie, files, bot = ScriptedKie(), ResultFiles(), RecordingBot(clock)
    kie = KieClient(
        "unit-kie-key", market_base_url=MARKET_URL, upload_base_url=UPLOAD_URL,
        transport=scripted_kie.transport, sleep=clock.sleep,
        create_limiter=SlidingWindowLimiter(20, 10.0, clock=clock.monotonic, sleep=clock.sleep),
        status_limiter=SlidingWindowLimiter(10, 1.0, clock=clock.monotonic, sleep=clock.sleep),
    )
    downloader = SafeDownloader(["aiquickdraw.com"], max_bytes=pipeline_config.max_result_bytes,
                                transport=files.transport, resolver=public_resolver)
    media_root = tmp_path / "media"
    pipeline = Pipeline(
        repository=repository, kie=kie, catalog=Catalog(),
        media=LocalMediaStore(media_root, PUBLIC_BASE_URL), downloader=downloader,
        sender=ChatSender(bot, max_wait=pipeline_config.lease_seconds / 3,
                          clock=clock.monotonic, sleep=clock.sleep),
        presenter=PlainPresenter(), config=pipeline_config, owner="unit", clock=clock,
    )
    world = World(
        clock=clock, kie=scripted_kie, files=files, bot=bot, repository=repository,
        media_root=media_root, generations=GenerationService(pipeline, monotonic=clock.monotonic),
        config=pipeline_config, _closers=[engine.dispose, kie.aclose, downloader.aclose],
    )
    pipeline.kick = world.kicks.append  # the job runner's kick, recorded instead of run
    return world
