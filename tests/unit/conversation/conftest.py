"""The real dispatcher (`kiebot.app.build_dispatcher`) fed updates in-process.

MockedBot answers the Bot API, an SQLite file in tmp_path holds users and money, KIE and result
downloads sit behind an httpx.MockTransport that no test may reach: the conversation only queues
generations, and the jobs that would submit them never run here (the pipeline's `kick` is
recorded instead). An autouse guard makes any attempt to open a connection fail the test.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiogram import Dispatcher
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.types import Message, Update, User

import handlers
from bot.config import Settings
from bot.delivery import ChatSender
from bot.downloads import SafeDownloader
from bot.services.accounts import AccountService
from bot.services.generation import GenerationService
from bot.services.pipeline.context import Pipeline
from handlers.texts import tr
from kie_client.catalog import Catalog
from kie_client.client import KieClient
from kiebot.app import build_dispatcher, build_media_store, pipeline_config
from migrations.runner import ensure_schema
from storage import schema
from storage.db import create_engine
from storage.repository import Repository
from testkit.mocked_bot import BOT_TOKEN, MockedBot, Updates, text_of, tg_user

ADMIN_ID = 900001
SIGNUP_BONUS = 50


# -- the database ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def schema_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test gets a copy (cheaper than migrating)."""
    path = tmp_path_factory.mktemp("schema") / "template.sqlite3"

    async def migrate() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await ensure_schema(engine)
        finally:
            await engine.dispose()

    loop = asyncio.new_event_loop()  # not asyncio.run: that would unset pytest-asyncio's loop
    try:
        loop.run_until_complete(migrate())
    finally:
        loop.close()
    return path


# -- the harness -------------------------------------------------------------------------------

@dataclass
class Harness:
    dispatcher: Dispatcher
    bot: MockedBot
    updates: Updates
    repository: Repository
    engine: Any
    settings: Settings
    catalog: Catalog
    media: Any
    kicks: list[str] = field(default_factory=list)  # pipeline stages the handlers woke

    def user(self, user_id: int, first_name: str = "Ann", **kw: Any) -> User:
        return tg_user(user_id, first_name, **kw)

    async def feed(self, update: Update) -> list[TelegramMethod[Any]]:
        """Feed one update; returns the Bot API calls it caused, in order."""
        before = len(self.bot.session.calls)
        await self.dispatcher.feed_update(self.bot, update)
        return self.bot.session.calls[before:]

    async def send(self, user: User, text: str, **kw: Any) -> list[TelegramMethod[Any]]:
        return await self.feed(self.updates.message(user, text, **kw))

    async def press(self, user: User, button: str, *, message: Message | None = None
                    ) -> list[TelegramMethod[Any]]:
        return await self.feed(self.updates.press(user, button, message=message))

    def screen(self, user: User) -> Message:
        """The newest bot message in the user's chat, as it looks now."""
        return self.bot.session.shown(user.id)[-1]

    async def ledger(self, user_id: int) -> list[tuple[str, int]]:
        entries = await self.repository.ledger(user_id, limit=50)
        return [(e.reason, e.delta) for e in reversed(entries)]

    async def rows(self, table: sa.Table, **where: Any) -> list[Any]:
        query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
        async with self.engine.connect() as conn:
            return list((await conn.execute(query.order_by(table.c.id))).mappings())

    async def generations(self, user_id: int) -> list[Any]:
        return await self.rows(schema.generations, user_id=user_id)


def texts(calls: list[TelegramMethod[Any]]) -> list[str]:
    """What the messages sent or edited by these calls say, in order."""
    return [t for t in map(text_of, calls) if t]


def answer_of(calls: list[TelegramMethod[Any]]) -> AnswerCallbackQuery:
    """The one answer a button press must get (Telegram shows a spinner until it comes)."""
    answers = [c for c in calls if isinstance(c, AnswerCallbackQuery)]
    assert len(answers) == 1, f"expected one callback answer, got {answers}"
    return answers[0]


@pytest.fixture
async def harness(tmp_path: Path, schema_template: Path, caplog: pytest.LogCaptureFixture):
    database = tmp_path / "kiebot.sqlite3"
    shutil.copyfile(schema_template, database)
    settings = Settings(
        _env_file=None, BOT_TOKEN=BOT_TOKEN, KIE_API_KEY="unit-kie-key",
        KIE_CALLBACK_SECRET="unit-callback-secret", DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        MEDIA_DIR=str(tmp_path / "media"), ADMIN_IDS=str(ADMIN_ID), SIGNUP_BONUS=SIGNUP_BONUS,
    )
    kie_requests: list[httpx.Request] = []

    def outside_world(request: httpx.Request) -> httpx.Response:
        kie_requests.append(request)
        return httpx.Response(503, json={"code": 503, "msg": "the unit tier never calls KIE"})

    engine = create_engine(settings.database_url)
    repository = Repository(engine)
    catalog = Catalog()
    bot = MockedBot(BOT_TOKEN)
    kie = KieClient(settings.kie_api_key.get_secret_value(),
                    market_base_url=settings.kie_market_base_url,
                    upload_base_url=settings.kie_upload_base_url,
                    transport=httpx.MockTransport(outside_world))
    downloader = SafeDownloader(settings.kie_result_hosts, max_bytes=settings.max_result_bytes,
                                transport=httpx.MockTransport(outside_world))
    presenter = handlers.build_presenter(catalog)
    media = build_media_store(settings)
    pipeline = Pipeline(repository=repository, kie=kie, catalog=catalog, media=media,
                        downloader=downloader, sender=ChatSender(bot), presenter=presenter,
                        config=pipeline_config(settings), owner="unit-tests")
    accounts = AccountService(repository, signup_bonus=settings.signup_bonus,
                              packs=settings.topup_packs, admin_ids=settings.admin_ids)
    dispatcher = build_dispatcher(settings, storage=MemoryStorage(), catalog=catalog,
                                  generations=GenerationService(pipeline), accounts=accounts,
                                  presenter=presenter)
    h = Harness(dispatcher=dispatcher, bot=bot, updates=Updates(bot), repository=repository,
                engine=engine, settings=settings, catalog=catalog, media=media)
    pipeline.kick = h.kicks.append
    caplog.set_level(logging.ERROR)
    try:
        yield h
    finally:
        await dispatcher.storage.close()
        await kie.aclose()
        await downloader.aclose()
        await bot.session.close()
        await engine.dispose()
    assert not kie_requests, f"the conversation reached KIE: {kie_requests}"
    assert not bot.session.unanswered, f"Bot API calls with no answer: {bot.session.unanswered}"
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, f"a handler failed: {failures}"


def seedream_buttons(lang: str) -> dict[str, str]:
    """The labels on the way to a Seedream 4.5 card (16:9), as the user reads them."""
    return {
        "images": tr(lang, "job_create_image"),
        "model": tr(lang, "model_button", name="Seedream 4.5", price=8),
        "aspect": tr(lang, "btn_option", label=tr(lang, "label_aspect_ratio"), value="1:1") + " ▸",
        "16:9": "16:9",
        "continue": tr(lang, "btn_continue", price=8),
        "generate": tr(lang, "btn_generate", price=8),
    }


async def to_card(h: Harness, user: User, prompt: str = "a lighthouse at dusk",
                  lang: str = "en") -> Message:
    """/start → Create an image → Seedream 4.5 → 16:9 → Continue → prompt; returns the summary card."""
    b = seedream_buttons(lang)
    await h.send(user, "/start")
    for button in ("images", "model", "aspect", "16:9", "continue"):
        await h.press(user, b[button])
    await h.send(user, prompt)
    return h.screen(user)
