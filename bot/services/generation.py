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
from collections.abc import Sequence
from dataclasses import dataclass

from kie_client.catalog import Catalog, CatalogError, ImageInputError, InvalidOptionError, Job
from kie_client.providers import DEFAULT_API
from kie_client.types import CallbackPayload
from storage.media import MediaStoreError, extension_for, input_path, new_token
from storage.models import Generation, GenerationStatus, Stage
from storage.repository import MAX_VARIANTS

from bot.downloads import sniff_media_type
from bot.logging import kv
from bot.services.pipeline.complete import CallbackOutcome, Completer
from bot.services.pipeline.context import (
    API_KEY,
    AUDIO_MIME_KEY,
    AUDIO_PATH_KEY,
    MEDIA_TOKEN_KEY,
    SOURCE_MIME_KEY,
    SOURCE_MIMES_KEY,
    SOURCE_PATH_KEY,
    SOURCE_PATHS_KEY,
    Pipeline,
    RowLease,
)
from bot.services.pipeline.deliver import Deliverer, ProgressTracker
from bot.services.pipeline.failures import StageFailures
from bot.services.pipeline.submit import Submitter

__all__ = [
    "LABEL_KEY",
    "CallbackOutcome",
    "GenerationService",
    "PriceChangedError",
    "SourceAudio",
    "SourceAudioError",
    "SourceImage",
    "SourceImageError",
    "Started",
]

log = logging.getLogger("bot.pipeline")

# What this pipeline serves: the API shapes it submits (kie_client/providers.py) and whether the
# handlers take a user's recording (voice message or audio file) as a model's audio input.
PROVIDER_APIS = ("market", "veo")
AUDIO_INPUT = True

# What the chat shows instead of the prompt when set (a photo template's name: its prompt is
# long and ours, not the user's): an underscored option, never sent to KIE.
LABEL_KEY = "_label"

# While rows of a pass are in flight, look for newly due rows this often (when none finished).
REFILL_SECONDS = 0.25


@dataclass(frozen=True)
class SourceImage:
    data: bytes
    mime_type: str
    file_name: str


class SourceAudioError(Exception):
    """The user's recording cannot be used (missing, type, size)."""

    def __init__(self, user_reason: str) -> None:
        super().__init__(user_reason)
        self.user_reason = user_reason


@dataclass(frozen=True)
class SourceAudio:
    """A voice message or audio file for a model's audio input."""

    data: bytes
    mime_type: str
    file_name: str
    seconds: float | None = None  # Telegram's duration of the voice message or audio file


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


NOT_A_PICTURE = "the file is not a picture"


def _sniffed(image: SourceImage) -> SourceImage:
    """The image with the type its bytes prove; the declared one (a document's mime_type is
    whatever the sender's app said) is not trusted, as results' Content-Type is not
    (bot/downloads.py). Anything that is not an image format at all is refused here, before
    anything is charged or stored."""
    actual = sniff_media_type(image.data[:16])
    if actual is None or not actual.startswith("image/"):
        raise SourceImageError(NOT_A_PICTURE)
    if actual == image.mime_type:
        return image
    return SourceImage(data=image.data, mime_type=actual, file_name=image.file_name)


def _input_paths(options: dict) -> list[str]:
    """Every stored input of a generation's options: its photo(s) and audio."""
    paths = [options.get(SOURCE_PATH_KEY), *(options.get(SOURCE_PATHS_KEY) or ()),
             options.get(AUDIO_PATH_KEY)]
    return [path for path in paths if path]


class GenerationService:
    def __init__(self, pipeline: Pipeline, *, monotonic=time.monotonic, daily_free: int = 0,
                 daily_free_model: str | None = None) -> None:
        self.pipeline = pipeline
        # Free generations a user gets per UTC day on one model (0: none), kept by the
        # repository in start_generation's transaction.
        self.daily_free = daily_free
        self._daily_free_model = daily_free_model
        self.catalog: Catalog = pipeline.catalog
        # The shapes this pipeline submits and the inputs the handlers collect: a model of any
        # other shape or input stays in the catalog, unsold, until its provider and input land.
        self.catalog.limit_to(apis=PROVIDER_APIS, audio_input=AUDIO_INPUT)
        self.repository = pipeline.repository
        self.submitter = Submitter(pipeline, self._fail)
        self.completer = Completer(pipeline, self._fail)
        self.deliverer = Deliverer(pipeline)
        self.progress = ProgressTracker(pipeline, monotonic=monotonic)
        self.failures = StageFailures(pipeline, self._fail, monotonic=monotonic)

    # -- what handlers call --------------------------------------------------------------------

    def price(self, model_key: str, options: dict, *, audio_seconds: float | None = None) -> int:
        """What start() charges for these options (per-audio-second models: the audio's seconds,
        unknown = the longest the model takes)."""
        return self.catalog.price(model_key, options, audio_seconds=audio_seconds)

    def free_model(self) -> str | None:
        """The model of the daily free allowance: DAILY_FREE_MODEL when on sale, else the
        cheapest image-creating model on sale; None when the allowance is off."""
        if self.daily_free <= 0:
            return None
        key = self._daily_free_model
        if key is not None:
            try:
                return key if self.catalog.sellable(key) else None
            except CatalogError:
                return None
        models = [m.key for m in self.catalog.models(job=Job.CREATE_IMAGE, enabled_only=True)
                  if self.catalog.sellable(m.key)]
        return min(models, key=self.catalog.from_price, default=None)

    async def free_left(self, user_id: int) -> int:
        """Free generations the user has left today (0 when the allowance is off)."""
        if self.free_model() is None:
            return 0
        return await self.repository.daily_free_left(user_id, self.daily_free,
                                                     now=self.pipeline.clock())

    async def start(
        self, *, user_id: int, chat_id: int, model_key: str, options: dict, prompt: str,
        request_key: str, source_image: SourceImage | None = None,
        source_generation_id: int | None = None, progress_message_id: int | None = None,
        free: bool = False, source_images: Sequence[SourceImage] = (),
        source_audio: SourceAudio | None = None, audio_seconds: float | None = None,
        expected_cost: int | None = None, price: int | None = None, label: str | None = None,
        variants: int = 1,
    ) -> Started:
        """Validate, charge and queue. Raises InsufficientBalanceError, InFlightLimitError,
        CatalogError subclasses or SourceImageError; nothing is charged when it raises.

        Photos: `source_images` (an album, in order) or `source_image`, else the picture of
        `source_generation_id`; a model whose image input is optional (min_count 0) runs on
        the prompt alone without them. `source_audio` feeds a model's audio input; its length
        (`audio_seconds`, else the recording's own `seconds`) prices per-audio-second models.
        `expected_cost` is the price the card showed: a different price now raises
        PriceChangedError and charges nothing. `price` replaces the catalog's price and `label`
        is shown instead of the prompt (a photo template's ⭐ and name, bot/services/templates.py).
        `variants` > 1 (image models with a prompt): that many rows, charged together
        (storage/repository/_variants.py); the lead is returned."""
        p = self.pipeline
        spec = self.catalog.get(model_key)
        if audio_seconds is None and source_audio is not None:
            audio_seconds = source_audio.seconds
        if not free:  # an admin's self-test may try a switched-off model before enabling it
            self.catalog.check_enabled(model_key)  # no new orders: ModelDisabledError
        normalised = self.catalog.normalise_options(model_key, options)
        text = self.catalog.validate_prompt(model_key, prompt)
        if variants != 1 and (not 2 <= variants <= MAX_VARIANTS or spec.kind != "image"
                              or not spec.prompt):
            raise InvalidOptionError("variants", variants, list(range(1, MAX_VARIANTS + 1)))
        unit = 0 if free else (price if price is not None else
                               self.price(model_key, normalised, audio_seconds=audio_seconds))
        cost = unit * variants
        if expected_cost is not None and cost != expected_cost:
            # The price moved (an admin's /models) after the card showed it: charge nothing.
            raise PriceChangedError(shown=expected_cost, price=cost)
        stored_options: dict = dict(normalised)
        stored_options[MEDIA_TOKEN_KEY] = new_token()
        if label:
            stored_options[LABEL_KEY] = label[:64]

        if spec.api != DEFAULT_API:
            stored_options[API_KEY] = spec.api
        rule = spec.image_input
        if rule is not None:
            images = list(source_images) or ([source_image] if source_image is not None else [])
            if not images and source_generation_id is not None:
                images = [await self._image_from_generation(user_id, source_generation_id)]
            if len(images) < rule.min_count:
                raise SourceImageError(f"{spec.name} needs a photo to start from")
            if len(images) > rule.max_count:
                raise SourceImageError(f"{spec.name} takes at most {rule.max_count} photos")
            images = [_sniffed(image) for image in images]
            for image in images:
                try:
                    self.catalog.check_image(model_key, mime_type=image.mime_type,
                                             size=len(image.data))
                except ImageInputError as exc:
                    raise SourceImageError(str(exc)) from None
            token = stored_options[MEDIA_TOKEN_KEY]
            paths = [await self._store_source(user_id, request_key, image, token=token, index=i)
                     for i, image in enumerate(images)]
            if len(images) == 1:
                stored_options[SOURCE_PATH_KEY] = paths[0]
                stored_options[SOURCE_MIME_KEY] = images[0].mime_type
            elif images:
                stored_options[SOURCE_PATHS_KEY] = paths
                stored_options[SOURCE_MIMES_KEY] = [image.mime_type for image in images]
        audio_rule = spec.audio_input
        if audio_rule is not None:
            if source_audio is None and audio_rule.min_count > 0:
                raise SourceAudioError(f"{spec.name} needs a voice message or audio file")
            if source_audio is not None:
                try:
                    self.catalog.check_audio(model_key, mime_type=source_audio.mime_type,
                                             size=len(source_audio.data), seconds=audio_seconds)
                except CatalogError as exc:
                    raise SourceAudioError(str(exc)) from None
                stored_options[AUDIO_PATH_KEY] = await self._store_source(
                    user_id, request_key, source_audio, token=stored_options[MEDIA_TOKEN_KEY],
                    index="a")
                stored_options[AUDIO_MIME_KEY] = source_audio.mime_type

        now = p.clock()
        common = dict(
            user_id=user_id, chat_id=chat_id, model_key=model_key, kind=spec.kind.value,
            options=stored_options, prompt=text, request_key=request_key,
            max_in_flight=p.config.max_in_flight, deadline_at=now + p.config.expiry(spec.kind.value),
            now=now, daily_free=self.daily_free if not free and model_key == self.free_model() else 0,
        )
        if variants > 1:  # N rows, N spend rows, one transaction; the daily free use is for one
            common.pop("daily_free")
            result, _ = await p.repository.start_variants(cost=unit, count=variants, **common)
        else:
            result = await p.repository.start_generation(cost=cost, **common)
        g = result.generation
        if not result.created:  # a repeat of the request: the first row stands
            await self._drop_unused_source(stored_options, g)
        else:
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

    async def _store_source(self, user_id: int, request_key: str,
                            image: SourceImage | SourceAudio, *, token: str,
                            index: int | str = 0) -> str:
        # Named for the request, not the (not yet existing) generation id, plus the generation's
        # random token (storage.media.input_path): a source's name cannot be guessed from the
        # chat and message ids. The first photo of an album keeps the single photo's name.
        digest = hashlib.sha256(request_key.encode("utf-8")).hexdigest()[:32]
        ext = extension_for(image.mime_type, image.file_name)
        if ext == "bin":
            if isinstance(image, SourceAudio):
                raise SourceAudioError("this audio type is not supported; send a voice message, MP3 or M4A")
            raise SourceImageError("this photo type is not supported; send a JPEG, PNG or WebP")
        suffix = "" if index == 0 else f"-{index}"
        path = input_path(user_id, f"r{digest}{suffix}", ext, token=token)

        async def chunks():
            yield image.data

        await self.pipeline.media.put(path, chunks(), content_type=image.mime_type,
                                      max_bytes=len(image.data))
        return path

    async def _drop_unused_source(self, stored_options: dict, existing: Generation) -> None:
        """A repeated request (a double tap on Generate) stored its inputs under a token of its
        own before finding the first request's row: those copies are nobody's, so delete them."""
        kept = set(_input_paths(existing.options or {}))
        for path in _input_paths(stored_options):
            if path in kept:
                continue
            try:
                await self.pipeline.media.delete(path)
            except MediaStoreError as exc:  # an orphan costs only space
                log.warning(kv("unused source not deleted", error=type(exc).__name__))

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

    def parse_callback(self, api: str | None, body: bytes) -> CallbackPayload:
        """A callback body in the shape of provider `api` (None: market). Raises
        KieResponseError for a malformed body, UnknownProviderError for an unknown shape."""
        assert self.pipeline.providers is not None
        return self.pipeline.providers.get(api).parse_callback(body)

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
                await p.yield_to_acks()  # KIE's and Telegram's acknowledgements go first
                self.progress.track(g)
                if handler is None:
                    delivered = await self.deliverer.deliver(g, lease=lease)
                else:
                    await handler(g)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # One line, a per-row backoff stored on the row, the admins told once, and
                # the row given up (refunded once) after a bounded number of attempts.
                try:
                    await self.failures.record(stage, g, exc, owner=owner)
                except Exception as record_exc:  # the database itself is away
                    log.warning(kv("stage failed; not recorded", stage=stage, generation=g.id,
                                   error=type(exc).__name__,
                                   record_error=type(record_exc).__name__))
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
