"""/selftest: the origin's "Test UI". A button per model runs it free with a fixed prompt (and a
generated picture or second of silence where the model needs one) and one message shows, live,
the task id, poll attempts, state and the stored result links."""

from __future__ import annotations

import asyncio
import io
import logging
import struct
import wave
import zlib
from collections.abc import Coroutine
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.services.generation import (
    GenerationService,
    SourceAudio,
    SourceAudioError,
    SourceImage,
    SourceImageError,
)
from handlers import keyboards
from handlers.admin import IsAdmin
from handlers.admin_reports import status_text
from handlers.callbacks import SelfTestCb
from handlers.errors import StaleMenu
from handlers.failures import catalog_text, failure_text, source_text
from handlers.texts import count, tr
from kie_client.catalog import Catalog, CatalogError, ModelSpec
from storage.errors import InFlightLimitError
from storage.models import Generation, GenerationStatus

log = logging.getLogger(__name__)

TEST_PROMPT = "A red fox sitting in fresh snow, soft morning light, photorealistic"
WATCH_LIMIT_S = 20 * 60


def test_png(width: int = 64, height: int = 64) -> bytes:
    """A small gradient PNG made without imaging libraries (source for i2v/edit self-tests)."""
    rows = b"".join(
        b"\x00" + bytes(c for x in range(width) for c in (x * 4 % 256, y * 4 % 256, 128))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_wav(seconds: int = 1, rate: int = 8000) -> bytes:
    """Silence as a 16-bit mono WAV (the recording for a talking-photo self-test)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * rate * seconds)
    return buf.getvalue()


def render(lang: str, name: str, g: Generation, now: datetime) -> str:
    elapsed = int((now - g.created_at).total_seconds()) if g.created_at else 0
    if g.status == GenerationStatus.succeeded:
        result = tr(lang, "selftest_result", links="\n".join(g.result_urls) or "—")
    elif g.status == GenerationStatus.failed:
        # The same sentence a user would get; the stored English error stays in the logs/DB.
        result = tr(lang, "selftest_failed", reason=failure_text(lang, g.error, g.fail_code))
    else:
        result = ""
    return tr(lang, "selftest_status", name=name, id=g.id, task=g.task_id or "—",
              status=status_text(lang, g.status), kie_state=g.kie_state or "—",
              polls=g.poll_attempts, elapsed=tr(lang, "unit_seconds", n=max(0, elapsed)),
              result=result).strip()


def start_error_text(lang: str, exc: Exception, spec: ModelSpec | None) -> str:
    if isinstance(exc, InFlightLimitError):
        return tr(lang, "inflight_limit", generations=count(lang, exc.limit, "generation"))
    if isinstance(exc, (SourceImageError, SourceAudioError)):
        reason = source_text(lang, exc.user_reason, spec)
    elif isinstance(exc, CatalogError):
        reason = catalog_text(lang, exc, spec)
    else:
        reason = tr(lang, "fail_generic")
    return tr(lang, "selftest_failed", reason=reason)


class Watches:
    """The live status messages of running self-tests. The event loop keeps only weak references
    to tasks, so each watch is held here until it ends. One per router (see router())."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, watch: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(watch)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def watch(bot: Bot, chat_id: int, message_id: int, lang: str, name: str,
                generations: GenerationService, generation_id: int, interval: float) -> None:
    """Edits the status message whenever its text changes, until the generation is final (or
    WATCH_LIMIT_S passes)."""
    last = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WATCH_LIMIT_S
    while loop.time() < deadline:
        g = await generations.get(user_id=None, generation_id=generation_id)
        if g is None:
            return
        text = render(lang, name, g, datetime.now(UTC))
        if text != last:
            try:
                await bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id)
                last = text
            except TelegramAPIError as exc:
                log.info("selftest edit failed: %s", type(exc).__name__)
        if g.is_final:
            return
        await asyncio.sleep(interval)


async def selftest(message: Message, lang: str, catalog: Catalog) -> None:
    await message.answer(tr(lang, "selftest_title"), reply_markup=keyboards.selftest_kb(
        m for m in catalog.models() if catalog.served(m.key)))


async def run(query: CallbackQuery, callback_data: SelfTestCb, lang: str, bot: Bot,
              catalog: Catalog, generations: GenerationService, *, watches: Watches,
              selftest_interval: float = 1.0) -> None:
    """Starts the model free with TEST_PROMPT (and a generated PNG where it needs a picture) and
    watches it. `watches` is bound by router(); `selftest_interval` may come from the dispatcher."""
    try:
        spec = catalog.get(callback_data.model)
    except CatalogError as exc:
        raise StaleMenu() from exc
    await query.answer()
    chat = query.from_user.id
    source = audio = None
    if spec.image_input is not None and spec.image_input.min_count > 0:
        source = SourceImage(data=test_png(), mime_type="image/png", file_name="selftest.png")
    if spec.audio_input is not None and spec.audio_input.min_count > 0:
        seconds = spec.audio_input.min_seconds
        audio = SourceAudio(data=test_wav(seconds), mime_type="audio/wav", file_name="selftest.wav",
                            seconds=seconds)
    try:
        started = await generations.start(
            user_id=chat, chat_id=chat, model_key=spec.key, options=catalog.defaults(spec.key),
            prompt=TEST_PROMPT, request_key=f"selftest:{query.id}", source_image=source,
            source_audio=audio, free=True)
    except (CatalogError, SourceImageError, SourceAudioError, InFlightLimitError) as exc:
        await bot.send_message(chat, start_error_text(lang, exc, spec))
        return
    g = started.generation
    sent = await bot.send_message(chat, render(lang, spec.name, g, datetime.now(UTC)))
    watches.start(watch(bot, chat, sent.message_id, lang, spec.name, generations, g.id,
                        selftest_interval))


def router() -> Router:
    r = Router(name="selftest")
    r.message.filter(IsAdmin())
    r.callback_query.filter(IsAdmin())
    r.message.register(selftest, Command("selftest"))
    r.callback_query.register(partial(run, watches=Watches()), SelfTestCb.filter())
    return r
