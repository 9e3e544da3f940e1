"""What every pipeline stage needs, passed explicitly (no globals)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from typing import TYPE_CHECKING

from kie_client.callbacks import make_callback_token
from kie_client.providers import DEFAULT_API, Provider, Providers
from storage.models import Generation, Stage

from bot.logging import kv

if TYPE_CHECKING:
    from kie_client.catalog import Catalog
    from kie_client.client import KieClient
    from storage.media import MediaStore
    from storage.repository import Repository

    from bot.delivery import ChatSender
    from bot.downloads import SafeDownloader
    from bot.presenter import Presenter

# Keys the service adds to a generation's options next to the catalog options. Underscored keys
# are internal and never sent to KIE. (The prompt is a column of its own: Generation.prompt.)
SOURCE_PATH_KEY = "_source_path"
SOURCE_MIME_KEY = "_source_mime"
# The random part of this generation's object names (storage.media.new_token), drawn once at
# start: a storer that runs again after a crash writes the same names (overwriting), while
# nobody can guess them from ids and times. Rows from before it get a fresh token per attempt.
MEDIA_TOKEN_KEY = "_media_token"
# Several photos (an album): every stored path and type, in the order the user sent them.
SOURCE_PATHS_KEY = "_source_paths"
SOURCE_MIMES_KEY = "_source_mimes"
# A voice message or audio file given as the model's audio input.
AUDIO_PATH_KEY = "_audio_path"
AUDIO_MIME_KEY = "_audio_mime"
# The KIE API shape (provider name, ModelSpec.api) the generation was started on; absent = market.
# Kept on the row so polling and callbacks of a generation in flight never depend on the catalog.
API_KEY = "_api"
# kie_state written just before createTask: if the process dies inside the call, the next
# process sees it and treats the outcome as unknown instead of creating a second (billed) task.
CREATING = "creating"


def api_of(generation: Generation) -> str:
    return str((generation.options or {}).get(API_KEY) or DEFAULT_API)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PipelineConfig:
    callback_secret: str
    public_base_url: str | None = None
    max_in_flight: int | None = 3
    image_expiry: timedelta = timedelta(minutes=30)
    video_expiry: timedelta = timedelta(minutes=60)
    submit_unknown_window: timedelta = timedelta(minutes=20)
    callback_grace_s: float = 60.0
    poll_initial_s: float = 3.0
    lease_seconds: int = 300
    max_result_bytes: int = 300 * 1024 * 1024
    progress_interval_s: float = 5.0
    # Rows claimed per pass and handled at once, per stage (see stage_limits). Submit waits on
    # KIE's create window; a second row in flight overlaps its database writes with that wait.
    # Poll waits on the recordInfo window. Store and deliver wait on file hosts and on Telegram's
    # uploads, so they need enough rows in flight to fill 30 messages per second.
    batch_size: int = 20
    concurrency: int = 8
    submit_concurrency: int = 2
    poll_batch: int = 100
    poll_concurrency: int = 20
    store_batch: int = 50
    store_concurrency: int = 16
    deliver_batch: int = 100
    deliver_concurrency: int = 60
    # A stage that keeps failing on one row (bot/services/pipeline/failures.py): the row waits
    # stage_backoff_s · 2^(n-1) (≤ cap) after its n-th failure, the admins are told once after
    # stage_alert_after failures, and the row is given up (failed + refunded once) at
    # stage_max_attempts — about 5 minutes with these values, not the 30-minute expiry.
    admin_ids: tuple[int, ...] = ()
    stage_max_attempts: int = 6
    stage_alert_after: int = 3
    stage_backoff_s: float = 10.0
    stage_backoff_cap_s: float = 300.0

    def stage_limits(self, stage: Stage) -> tuple[int, int]:
        """(rows claimed per pass, rows handled at once) for `stage`."""
        if stage == Stage.submit:
            return self.batch_size, max(1, min(self.submit_concurrency, self.batch_size))
        if stage == Stage.poll:
            return self.poll_batch, self.poll_concurrency
        if stage == Stage.store:
            return self.store_batch, self.store_concurrency
        if stage == Stage.deliver:
            return self.deliver_batch, self.deliver_concurrency
        return self.batch_size, self.concurrency

    def callback_url(self, generation_id: int, api: str | None = None) -> str | None:
        """The URL KIE calls back; `api` (a provider name other than market) tells the route
        which body shape to expect."""
        if not self.public_base_url:
            return None
        token = make_callback_token(self.callback_secret, generation_id)
        shape = f"&api={quote(api)}" if api and api != DEFAULT_API else ""
        return f"{self.public_base_url}/kie/callback/{generation_id}?token={quote(token)}{shape}"

    def expiry(self, kind: str) -> timedelta:
        return self.video_expiry if kind == "video" else self.image_expiry

    def first_poll_delay(self) -> float:
        """Webhook mode waits for the callback first; polling-only mode polls at once."""
        return self.callback_grace_s if self.public_base_url else self.poll_initial_s

    def poll_delay(self, generation: Generation, now: datetime) -> float:
        """KIE's advice: ~3 s for the first 30 s, then 5–10 s up to 2 min, then 15–30 s."""
        started = generation.submitted_at or generation.created_at or now
        age = (now - started).total_seconds()
        if age < 30:
            return self.poll_initial_s
        if age < 120:
            return random.uniform(5, 10)
        return random.uniform(15, 30)


log = logging.getLogger("bot.pipeline")


@dataclass
class RowLease:
    """This process's lease on one claimed row, kept alive while the row is worked on.

    A send or a download can outlast LEASE_SECONDS; without renewal another process would claim
    the row meanwhile and do the work a second time (deliver twice). `keep_alive` renews every
    third of the lease until `done` is set; `renew()` right before an irreversible step (a send)
    says whether the row is still ours.
    """

    repository: Repository
    generation_id: int
    owner: str
    seconds: float
    clock: Callable[[], datetime]
    lost: bool = False

    async def renew(self) -> bool:
        if self.lost:
            return False
        ok = await self.repository.renew_lease(self.generation_id, owner=self.owner,
                                               lease_seconds=self.seconds, now=self.clock())
        self.lost = not ok
        return ok

    async def keep_alive(self, done: asyncio.Event) -> None:
        # Waits on the event with a timeout (not a sleep): the loop ends the moment the work does.
        interval = max(self.seconds / 3, 0.2)
        while not self.lost:
            try:
                await asyncio.wait_for(done.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            try:
                if not await self.renew():
                    log.warning(kv("lease lost while working", generation=self.generation_id))
            except Exception as exc:  # a database hiccup: try again at the next beat
                log.warning(kv("lease renewal failed", generation=self.generation_id,
                               error=type(exc).__name__))


# How long a row whose work could not be done right now waits before it is claimed again.
DEFER_SECONDS = 20.0


async def _go_on() -> None:
    return None


@dataclass
class Pipeline:
    repository: Repository
    kie: KieClient
    catalog: Catalog
    media: MediaStore
    downloader: SafeDownloader
    sender: ChatSender
    presenter: Presenter
    config: PipelineConfig
    owner: str
    # The wall clock of every timestamp the stages write and of every claim, so a test can move
    # time (a window, a deadline, a poll schedule) instead of waiting for it.
    clock: Callable[[], datetime] = utcnow
    # Set by the job runner: ask a stage to run now instead of at its next interval.
    kick: Callable[[Stage], None] = field(default=lambda stage: None)
    # KIE's API shapes by name (ModelSpec.api); by default every shape `kie` speaks.
    providers: Providers | None = None
    # Awaited before each row's work: lets HTTP acknowledgements in flight go first
    # (bot/loop_share.py: LoopShare.yield_to_acks); by default it does not wait.
    yield_to_acks: Callable[[], Awaitable[None]] = field(default=_go_on)

    def __post_init__(self) -> None:
        if self.providers is None:
            self.providers = Providers.for_client(self.kie)

    def provider_for(self, generation: Generation) -> Provider:
        assert self.providers is not None
        return self.providers.get(api_of(generation))

    async def defer(self, generation: Generation, seconds: float = DEFER_SECONDS) -> None:
        """Work on this row failed for a reason that may pass: try again later, not next pass."""
        await self.repository.update_fields(
            generation.id, next_poll_at=self.clock() + timedelta(seconds=seconds)
        )
