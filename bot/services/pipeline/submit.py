"""Submit: queued → generating (or submit_unknown, or failed + refund).

createTask is never repeated once it may have reached KIE (KIE bills every task and has no
idempotency key). The row is marked `kie_state=creating` before the call; a process that dies
inside the call leaves that mark, and the next submitter moves the row to `submit_unknown`
instead of creating again. The callback URL names the generation, so KIE's callback still finds
the row if the create response was lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from datetime import timedelta

from kie_client.errors import KieError, KieSubmissionUnknownError
from kie_client.ratelimit import settle
from storage.media import MediaStoreError
from storage.models import Generation, GenerationStatus

from bot.logging import kv
from bot.services.pipeline.context import (
    AUDIO_MIME_KEY,
    AUDIO_PATH_KEY,
    CREATING,
    SOURCE_MIME_KEY,
    SOURCE_MIMES_KEY,
    SOURCE_PATH_KEY,
    SOURCE_PATHS_KEY,
    Pipeline,
    api_of,
)

log = logging.getLogger("bot.pipeline.submit")

QUEUED = GenerationStatus.queued
SUBMIT_UNKNOWN = GenerationStatus.submit_unknown

# Set once this task's createTask got a slot from the client's create limiter: before that the
# request certainly never left, so a shutdown cancelling the wait must not leave the intent mark
# (it would become submit_unknown and a refund long after, for a task KIE never saw).
_SLOT_TAKEN: contextvars.ContextVar[bool] = contextvars.ContextVar("kie_create_slot", default=False)


class SlotNotingLimiter:
    """Wraps the KIE client's create limiter (the composition root does, kiebot/app.py) to note,
    per asyncio task, that a slot was handed out. Slots and 429 pauses still come from `inner`.

    Sound because `acquire` is awaited directly by the task that runs createTask (a ContextVar
    set there is visible to that task's Submitter.submit), and each row is handled in a task of
    its own (run_pass), so rows never see each other's note."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def acquire(self) -> object:
        slot = await self.inner.acquire()
        _SLOT_TAKEN.set(True)
        return slot

    async def settle(self, slot: object) -> None:
        await settle(self.inner, slot)

    async def pause(self, seconds: float) -> None:
        pause = getattr(self.inner, "pause", None)
        if pause is not None:
            await pause(seconds)

    def __repr__(self) -> str:
        return repr(self.inner)


class TerminalSubmitError(Exception):
    def __init__(self, user_reason: str, fail_code: str | None = None) -> None:
        super().__init__(user_reason)
        self.user_reason = user_reason
        self.fail_code = fail_code


def catalog_options(generation: Generation) -> dict:
    """The model's options as the catalog knows them (the service's own keys start with _)."""
    return {k: v for k, v in (generation.options or {}).items() if not k.startswith("_")}


class Submitter:
    def __init__(self, pipeline: Pipeline, fail) -> None:
        self.p = pipeline
        self._fail = fail  # async (generation, reason, fail_code) -> None; refunds and delivers
        # Without the note, a cancelled create cannot tell "still waiting for a slot" from "sent":
        # it then keeps the intent mark (the safe side: never a second billed task).
        self._notes_slots = isinstance(getattr(pipeline.kie, "create_limiter", None),
                                       SlotNotingLimiter)

    async def submit(self, generation: Generation) -> None:
        """Handle one claimed `queued` row (the caller holds its lease)."""
        p = self.p
        g = generation
        if g.status != QUEUED:
            return
        now = p.clock()
        if g.kie_state == CREATING:
            moved = await p.repository.transition(
                g.id, from_statuses={QUEUED}, to_status=SUBMIT_UNKNOWN,
                submitted_at=g.submitted_at or now,
                next_poll_at=now + p.config.submit_unknown_window, now=now,
            )
            if moved:
                log.warning(kv("create outcome unknown after restart", generation=g.id))
            return
        try:
            kie_input, spec = await self._build(g)
        except TerminalSubmitError as exc:
            await self._fail(g, exc.user_reason, exc.fail_code)
            return
        except KieError as exc:  # upload failed
            if exc.retryable:
                log.warning(kv("upload deferred", generation=g.id, error=type(exc).__name__))
                await p.defer(g)
                return
            await self._fail(g, exc.user_reason, _code(exc))
            return

        if not await p.repository.mark_submitting(g.id, kie_state=CREATING):
            log.info(kv("createTask skipped: cancelled meanwhile", generation=g.id))
            return
        api = api_of(g)
        log.info(kv("createTask started", model=g.model_key, generation=g.id, api=api))
        _SLOT_TAKEN.set(False)
        try:
            # The provider of the generation's API shape: Market createTask, Veo generate, ...
            task_id = await p.provider_for(g).submit(
                spec, kie_input, p.config.callback_url(g.id, api)
            )
        except asyncio.CancelledError:
            if self._notes_slots and not _SLOT_TAKEN.get():
                await asyncio.shield(p.repository.update_fields(g.id, kie_state=None))
                log.info(kv("createTask wait cancelled before sending", generation=g.id))
            raise
        except KieSubmissionUnknownError:
            await self._unknown(g)
            return
        except KieError as exc:
            if exc.retryable:
                # Definitely not created (the client only says so when the request never left
                # or KIE refused it with 429): clear the mark and wait for the next pass.
                await p.repository.update_fields(g.id, kie_state=None)
                log.warning(kv("createTask deferred", generation=g.id, error=type(exc).__name__))
                await p.defer(g, seconds=5)
                return
            log.warning(kv("createTask rejected", generation=g.id, error=type(exc).__name__,
                           code=_code(exc)))
            await self._fail(g, exc.user_reason, _code(exc))
            return
        except Exception:
            log.exception(kv("createTask crashed; outcome unknown", generation=g.id))
            await self._unknown(g)
            return

        now = p.clock()
        moved = await p.repository.transition(
            g.id, from_statuses={QUEUED, SUBMIT_UNKNOWN}, to_status=GenerationStatus.generating,
            task_id=task_id, submitted_at=now, kie_state="waiting",
            next_poll_at=now + timedelta(seconds=p.config.first_poll_delay()), now=now,
        )
        log.info(kv("task created", task_id=task_id, generation=g.id))
        if not moved:
            # The callback arrived before this response and already recorded the task.
            current = await p.repository.get_generation(g.id)
            if current and current.task_id and current.task_id != task_id:
                log.error(kv("task id mismatch", generation=g.id, recorded=current.task_id,
                             created=task_id))

    async def _unknown(self, g: Generation) -> None:
        now = self.p.clock()
        await self.p.repository.transition(
            g.id, from_statuses={QUEUED}, to_status=SUBMIT_UNKNOWN, submitted_at=now,
            next_poll_at=now + self.p.config.submit_unknown_window, now=now,
        )
        log.warning(kv("createTask outcome unknown; waiting for the callback", generation=g.id))

    async def _build(self, g: Generation):
        p = self.p
        try:
            spec = p.catalog.get(g.model_key)
        except Exception as exc:
            raise TerminalSubmitError(f"the model {g.model_key} is no longer available") from exc
        image_urls: list[str] = []
        if spec.image_input is not None:
            sources = _sources(g)
            if not sources and spec.image_input.min_count > 0:
                raise TerminalSubmitError("this model needs a photo and none was stored")
            for index, (path, mime) in enumerate(sources):
                image_urls.append(await self._upload(g, path, mime, index, "the source photo"))
        audio_urls: list[str] = []
        audio_path = (g.options or {}).get(AUDIO_PATH_KEY)
        if spec.audio_input is not None and audio_path:
            mime = (g.options or {}).get(AUDIO_MIME_KEY) or "audio/ogg"
            audio_urls.append(await self._upload(g, audio_path, mime, 0, "the voice recording"))
        try:
            kie_input = p.catalog.build_input(g.model_key, g.prompt, catalog_options(g),
                                              image_urls=image_urls, audio_urls=audio_urls)
        except ValueError as exc:  # CatalogError subclasses ValueError
            raise TerminalSubmitError(f"the request is no longer valid: {exc}") from exc
        return kie_input, spec

    async def _upload(self, g: Generation, path: str, mime: str, index: int, what: str) -> str:
        p = self.p
        try:
            data = await p.media.read(path)
        except MediaStoreError as exc:
            raise TerminalSubmitError(f"{what} could not be read") from exc
        ext = path.rsplit(".", 1)[-1]
        # Unique per generation and attempt: KIE overwrites same-named uploads (and caches them).
        name = f"g{g.id}_{index}_{secrets.token_hex(6)}.{ext}"
        uploaded = await p.kie.upload_stream(
            data, upload_path=f"kiebot/{g.user_id}", file_name=name, mime_type=mime
        )
        log.info(kv("source uploaded", generation=g.id, index=index, bytes=len(data)))
        return uploaded.download_url


def _sources(g: Generation) -> list[tuple[str, str]]:
    """(path, mime type) of every stored source photo: an album's list, or the single one."""
    options = g.options or {}
    paths = options.get(SOURCE_PATHS_KEY)
    if paths:
        mimes = list(options.get(SOURCE_MIMES_KEY) or [])
        return [(path, mimes[i] if i < len(mimes) else "image/jpeg") for i, path in enumerate(paths)]
    path = options.get(SOURCE_PATH_KEY)
    return [(path, options.get(SOURCE_MIME_KEY) or "image/jpeg")] if path else []


def _code(exc: KieError) -> str | None:
    code = getattr(exc, "code", None)
    if code is None:
        code = exc.body_code if exc.body_code is not None else exc.status_code
    return str(code) if code is not None else None
