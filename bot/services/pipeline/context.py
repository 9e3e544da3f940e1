"""What every pipeline stage needs, passed explicitly (no globals)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from typing import TYPE_CHECKING

from kie_client.callbacks import make_callback_token
from storage.models import Generation, Stage

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
# kie_state written just before createTask: if the process dies inside the call, the next
# process sees it and treats the outcome as unknown instead of creating a second (billed) task.
CREATING = "creating"


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
    batch_size: int = 20
    concurrency: int = 8

    def callback_url(self, generation_id: int) -> str | None:
        if not self.public_base_url:
            return None
        token = make_callback_token(self.callback_secret, generation_id)
        return f"{self.public_base_url}/kie/callback/{generation_id}?token={quote(token)}"

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


# How long a row whose work could not be done right now waits before it is claimed again.
DEFER_SECONDS = 20.0


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

    async def defer(self, generation: Generation, seconds: float = DEFER_SECONDS) -> None:
        """Work on this row failed for a reason that may pass: try again later, not next pass."""
        await self.repository.update_fields(
            generation.id, next_poll_at=self.clock() + timedelta(seconds=seconds)
        )
