"""GenerationService: the only code that moves a generation between states.

Handlers call start/cancel/get/library/resend; the server calls accept_callback; the job runner
calls run_pass(stage). Every stage works on rows it claimed with a lease (Repository.claim), so
two processes — or a process and its own restarted self — never handle the same row at once.
The stage modules live in bot/services/pipeline/; docs/lifecycle.md explains the states.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass

from kie_client.catalog import Catalog, ImageInputError
from kie_client.types import CallbackPayload
from storage.media import MediaStoreError, extension_for, input_path
from storage.models import Generation, GenerationStatus, Stage

from bot.logging import kv
from bot.services.pipeline.complete import CallbackOutcome, Completer
from bot.services.pipeline.context import SOURCE_MIME_KEY, SOURCE_PATH_KEY, Pipeline, RowLease
from bot.services.pipeline.deliver import Deliverer, ProgressTracker
from bot.services.pipeline.submit import Submitter

__all__ = [
    "CallbackOutcome",
    "GenerationService",
    "PriceChangedError",
    "SourceImage",
    "SourceImageError",
    "Started",
]

log = logging.getLogger("bot.pipeline")

PROVIDER_APIS = ("market",)
AUDIO_INPUT = False

# While rows of a pass are in flight, look for newly due rows this often (when none finished).
REFILL_SECONDS = 0.25


@dataclass(frozen=True)
class SourceImage:
    data: bytes
    mime_type: str
    file_name: str


@dataclass(frozen=True)
class Started:
    generation: Generation
    position: int | None
    created: bool


class PriceChangedError(Exception):
    """The price is no longer the one the user saw on the Generate button."""

    def __init__(self, *, shown: int, price: int) -> None:
        super().__init__(f"price changed from {shown} to {price}")
        self.shown = shown
        self.price = price


class SourceImageError(Exception):
    """The user's photo cannot be used (type, size, missing, not theirs)."""

    def __init__(self, user_reason: str) -> None:
        super().__init__(user_reason)
        self.user_reason = user_reason


class GenerationService:
    def __init__(self, pipeline: Pipeline, *, monotonic=time.monotonic) -> None:
        self.pipeline = pipeline
        self.catalog: Catalog = pipeline.catalog
        # The shapes this pipeline submits and the inputs the handlers collect: other models
        # (Veo, talking photos) stay in the catalog, unsold, until their provider and inputs land.
        self.catalog.limit_to(apis=PROVIDER_APIS, audio_input=AUDIO_INPUT)
        self.repository = pipeline.repository
        self.submitter = Submitter(pipeline, self._fail)
        self.completer = Completer(pipeline, self._fail)
        self.deliverer = Deliverer(pipeline)
        self.progress = ProgressTracker(pipeline, monotonic=monotonic)

    # -- what handlers call --------------------------------------------------------------------

    def price(self, model_key: str, options: dict, *, audio_seconds: float | None = None) -> int:
        """What start() charges for these options (per-audio-second models: the audio's seconds,
        unknown = the longest the model takes)."""
        return self.catalog.price(model_key, options, audio_seconds=audio_seconds)

    async def start(
        self, *, user_id: int, chat_id: int, model_key: str, options: dict, prompt: str,
        request_key: str, source_image: SourceImage | None = None,
        source_generation_id: int | None = None, progress_message_id: int | None = None,
        free: bool = False, audio_seconds: float | None = None, expected_cost: int | None = None,
    ) -> Started:
        """Validate, charge and queue. Raises InsufficientBalanceError, InFlightLimitError,
        CatalogError subclasses or SourceImageError; nothing is charged when it raises."""
        p = self.pipeline
        spec = self.catalog.get(model_key)
        if not free:  # an admin's self-test may try a switched-off model before enabling it
            self.catalog.check_enabled(model_key)  # no new orders: ModelDisabledError
        normalised = self.catalog.normalise_options(model_key, options)
        text = self.catalog.validate_prompt(model_key, prompt)
        cost = 0 if free else self.price(model_key, normalised, audio_seconds=audio_seconds)
        if expected_cost is not None and cost != expected_cost:
            # The price moved (an admin's /models) after the card showed it: charge nothing.
            raise PriceChangedError(shown=expected_cost, price=cost)
        stored_options: dict = dict(normalised)

        if spec.image_input is not None:
            image = source_image
            if image is None and source_generation_id is not None:
                image = await self._image_from_generation(user_id, source_generation_id)
            if image is None:
                raise SourceImageError(f"{spec.name} needs a photo to start from")
            try:
                self.catalog.check_image(model_key, mime_type=image.mime_type, size=len(image.data))
            except ImageInputError as exc:
                raise SourceImageError(str(exc)) from None
            stored_options[SOURCE_PATH_KEY] = await self._store_source(
                user_id, request_key, image
            )
            stored_options[SOURCE_MIME_KEY] = image.mime_type

        now = p.clock()
        result = await p.repository.start_generation(
            user_id=user_id, chat_id=chat_id, model_key=model_key, kind=spec.kind.value,
            cost=cost, options=stored_options, prompt=text, request_key=request_key,
            max_in_flight=p.config.max_in_flight, deadline_at=now + p.config.expiry(spec.kind.value),
            now=now,
        )
        g = result.generation
        if result.created:
            log.info(kv("generation queued", generation=g.id, model=model_key, user=user_id,
                        cost=cost))
            if progress_message_id:
                await p.repository.update_fields(g.id, progress_message_id=progress_message_id)
                g = await p.repository.get_generation(g.id) or g
        # Before the kick: once the submitter runs, the row may already have left the queue.
        position = (await p.repository.queue_position(g.id)
                    if g.status == GenerationStatus.queued else None)
        if result.created:
            p.kick(Stage.submit)
        self.progress.track(g)
        return Started(generation=g, position=position or None, created=result.created)

    async def _store_source(self, user_id: int, request_key: str, image: SourceImage) -> str:
        # Keyed by the request, not the (not yet existing) generation id; a repeat of the same
        # request overwrites the same object.
        digest = hashlib.sha256(request_key.encode("utf-8")).hexdigest()[:32]
        ext = extension_for(image.mime_type, image.file_name)
        if ext == "bin":
            raise SourceImageError("this photo type is not supported; send a JPEG, PNG or WebP")
        path = input_path(user_id, f"r{digest}", ext)

        async def chunks():
            yield image.data

        await self.pipeline.media.put(path, chunks(), content_type=image.mime_type,
                                      max_bytes=len(image.data))
        return path

    async def _image_from_generation(self, user_id: int, generation_id: int) -> SourceImage:
        g = await self.get(user_id=user_id, generation_id=generation_id)
        if (g is None or g.status != GenerationStatus.succeeded or not g.stored_paths
                or g.kind != "image"):
            raise SourceImageError("that picture is not available to animate")
        path = g.stored_paths[0]
        try:
            data = await self.pipeline.media.read(path)
        except MediaStoreError:
            raise SourceImageError("that picture is no longer stored") from None
        ext = path.rsplit(".", 1)[-1]
        mime = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                "webp": "image/webp"}.get(ext, "image/jpeg")
        return SourceImage(data=data, mime_type=mime, file_name=path.rsplit("/", 1)[-1])

    async def cancel(self, *, user_id: int, generation_id: int) -> bool:
        """Only while queued (nothing was sent to KIE yet); refunds."""
        g = await self.repository.get_generation(generation_id)
        if g is None or g.user_id != user_id or g.kie_state is not None:
            return False  # kie_state set: a createTask may be in flight right now
        cancelled = await self.repository.cancel_generation(
            generation_id, user_id=user_id, now=self.pipeline.clock()
        )
        if cancelled:
            log.info(kv("generation cancelled", generation=generation_id, user=user_id))
            await self.repository.mark_delivered(generation_id, now=self.pipeline.clock())
        return cancelled

    async def get(self, *, user_id: int | None, generation_id: int) -> Generation | None:
        g = await self.repository.get_generation(generation_id)
        if g is None or (user_id is not None and g.user_id != user_id):
            return None
        return g

    async def library(
        self, *, user_id: int, page: int, page_size: int,
        statuses: tuple[GenerationStatus | str, ...] | None = None,
    ) -> tuple[list[Generation], int]:
        """Newest first; finished results only unless `statuses` names others (the /library
        screen also lists failed and running ones)."""
        page = max(0, int(page))
        page_size = max(1, min(int(page_size), 50))
        extra = {} if statuses is None else {"statuses": statuses}
        items = await self.repository.list_library(user_id, limit=page_size, offset=page * page_size,
                                                   **extra)
        total = await self.repository.count_library(user_id, **extra)
        return items, total

    async def resend(self, *, user_id: int, chat_id: int, generation_id: int,
                     as_document: bool = False) -> bool:
        g = await self.get(user_id=user_id, generation_id=generation_id)
        if g is None or g.status != GenerationStatus.succeeded or not g.stored_paths:
            return False
        user = await self.repository.get_user(user_id)
        try:
            await self.deliverer.send_results(
                g, chat_id=chat_id, language=user.language if user else None,
                as_document=as_document,
            )
        except Exception as exc:  # the handler tells the user; the file stays in the library
            log.warning(kv("resend failed", generation=g.id, error=type(exc).__name__))
            return False
        return True

    # -- what the server calls -----------------------------------------------------------------

    async def accept_callback(self, generation_id: int, payload: CallbackPayload) -> CallbackOutcome:
        return await self.completer.accept_callback(generation_id, payload)

    # -- what the job runner calls -------------------------------------------------------------

    async def _fail(self, g: Generation, reason: str, fail_code: str | None) -> None:
        failed = await self.repository.fail_generation(g.id, error=reason, fail_code=fail_code,
                                                        now=self.pipeline.clock())
        if failed:
            log.info(kv("generation failed; refunded", generation=g.id, cost=g.cost,
                        reason=reason, fail_code=fail_code))
            self.pipeline.kick(Stage.deliver)

    async def run_pass(self, stage: Stage | str) -> int:
        """Claim up to a batch of rows for `stage`, handle them, release. Returns rows handled."""
        p = self.pipeline
        stage = Stage(stage)
        # Per-stage owner: a late release by one stage (e.g. the submitter, after a callback
        # already moved the row on) never frees a lease another stage of this process holds.
        owner = f"{p.owner}:{stage}"
        batch, concurrency = p.config.stage_limits(stage)
        handler = {
            Stage.submit: self.submitter.submit,
            Stage.poll: self.completer.poll,
            Stage.store: self.completer.store,
            Stage.expire: self._expire,
        }.get(stage)

        async def one(g: Generation) -> None:
            lease = RowLease(p.repository, g.id, owner, p.config.lease_seconds, p.clock)
            done = asyncio.Event()
            beat = asyncio.get_running_loop().create_task(lease.keep_alive(done),
                                                          name=f"lease-{g.id}")
            delivered = False
            try:
                self.progress.track(g)
                if handler is None:
                    delivered = await self.deliverer.deliver(g, lease=lease)
                else:
                    await handler(g)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(kv("stage error", stage=stage, generation=g.id))
            finally:
                done.set()
                # The beat ends at once unless a renewal is in flight; never leave it behind.
                _, pending = await asyncio.wait({beat}, timeout=5.0)
                for task in pending:
                    task.cancel()
                try:
                    # mark_delivered already dropped the lease: skip a write that changes nothing.
                    if delivered is not True:
                        await asyncio.shield(p.repository.release(g.id, owner=owner))
                except Exception:
                    log.warning(kv("lease release failed", generation=g.id))

        # A rolling pass: rows are claimed as room frees up (up to `batch` in the pass, at most
        # `concurrency` at once), so one slow row (a 20 s upload) never holds the rows behind it,
        # no row waits under a lease for a turn, and the KIE windows stay full across rows.
        # Claims come in oldest-first order; on submit the create limiter keeps that order.
        tasks: set[asyncio.Task] = set()
        seen: set[int] = set()
        claimed = 0
        cycled = False  # a row came round again: everything due was handled in this pass

        async def refill() -> None:
            nonlocal claimed, cycled
            room = min(concurrency - len(tasks), batch - claimed)
            if room <= 0 or cycled:
                return
            rows = await p.repository.claim(stage, owner=owner,
                                            lease_seconds=p.config.lease_seconds, limit=room,
                                            now=p.clock())
            for g in rows:
                if g.id in seen:
                    cycled = True
                    await p.repository.release(g.id, owner=owner)
                    continue
                seen.add(g.id)
                claimed += 1
                tasks.add(asyncio.get_running_loop().create_task(
                    one(g), name=f"{stage}-{g.id}"))

        try:
            await refill()
            while tasks:
                done, _ = await asyncio.wait(tasks, timeout=REFILL_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                tasks.difference_update(done)
                # After a timeout (rows are slow) or once enough room is free: claim more.
                if not done or concurrency - len(tasks) >= max(1, concurrency // 4):
                    await refill()
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return claimed

    async def _expire(self, g: Generation) -> None:
        if g.is_final:
            return
        minutes = int(self.pipeline.config.expiry(g.kind).total_seconds() // 60)
        log.warning(kv("generation expired", generation=g.id, status=g.status))
        await self._fail(g, f"it took longer than {minutes} minutes", g.fail_code)
