"""Background jobs: apscheduler runs each pipeline stage on an interval; kicks run it at once.

Stages (see GenerationService.run_pass): submit (drain queued within KIE's create limit), poll
(recordInfo for rows whose next_poll_at is due — callbacks set it to now), store, deliver and
expire. A stage never runs twice at once in one process: a kick during a pass asks for one more
pass instead. Every pass claims rows with leases, so other processes are safe too; on start the
first run of each stage picks up whatever a previous process left unfinished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from storage.models import Stage

from bot.logging import kv

if TYPE_CHECKING:
    from bot.services.generation import GenerationService

log = logging.getLogger("bot.jobs")
MAX_IMMEDIATE_PASSES = 10


class JobRunner:
    def __init__(self, service: GenerationService, *, interval_s: float,
                 progress_interval_s: float = 1.0, batch_size: int = 20) -> None:
        self.service = service
        self.interval_s = interval_s
        self.progress_interval_s = progress_interval_s
        self.batch_size = batch_size
        self._scheduler: AsyncIOScheduler | None = None
        self._running: dict[Stage, asyncio.Task] = {}
        self._again: set[Stage] = set()
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._started = False
        self._periodic: list[tuple[str, Callable[[], Awaitable[Any]], float]] = []

    @property
    def started(self) -> bool:
        return self._started

    def add_periodic(self, name: str, run: Callable[[], Awaitable[Any]], *,
                     interval_s: float) -> None:
        """Run `run()` at start and then every `interval_s` (e.g. payment reconciliation);
        call before start(). Failures are logged, never raised into the scheduler."""
        self._periodic.append((name, run, interval_s))

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task:
        """Start a tracked background task (awaited or cancelled by stop())."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for stage in Stage:
            scheduler.add_job(self._tick, "interval", seconds=self.interval_s, args=[stage],
                              id=f"stage-{stage}", max_instances=1, coalesce=True,
                              next_run_time=now, misfire_grace_time=None)
        for name, run, interval_s in self._periodic:
            scheduler.add_job(self._periodic_run, "interval", seconds=interval_s,
                              args=[name, run], id=f"periodic-{name}", max_instances=1,
                              coalesce=True, next_run_time=now, misfire_grace_time=None)
        scheduler.add_job(self._progress, "interval", seconds=self.progress_interval_s,
                          id="progress", max_instances=1, coalesce=True,
                          misfire_grace_time=None)
        scheduler.start()
        self._scheduler = scheduler
        self._started = True
        log.info(kv("jobs started", interval_s=self.interval_s))

    async def _tick(self, stage: Stage) -> None:
        self.kick(stage)

    async def _periodic_run(self, name: str, run: Callable[[], Awaitable[Any]]) -> None:
        if self._stopping:
            return
        task = self.spawn(run(), name=f"periodic-{name}")  # tracked: stop() waits for it
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(kv("periodic job failed", job=name, error=type(exc).__name__,
                         reason=str(exc)[:200]))

    async def _progress(self) -> None:
        try:
            await self.service.progress.tick()
        except Exception:
            log.exception("progress update failed")

    def kick(self, stage: Stage | str) -> None:
        """Run `stage` now (or once more right after the current pass). An unknown stage name
        raises ValueError (a typo must not silently mean "never")."""
        stage = Stage(stage)
        # An app that was built but never started (a CLI tool, a test client writing rows for
        # another process) must not process anything itself.
        if not self._started or self._stopping:
            return
        task = self._running.get(stage)
        if task is not None and not task.done():
            self._again.add(stage)
            return
        self._running[stage] = self.spawn(self._run(stage), name=f"stage-{stage}")

    async def _run(self, stage: Stage) -> None:
        # A full batch means more rows may be waiting, so pass again at once — but only a few
        # times in a row: rows that fail fast are deferred by the stage, and this cap keeps a
        # stage from spinning even if one is not.
        repeats = 0
        while not self._stopping and repeats < MAX_IMMEDIATE_PASSES:
            repeats += 1
            self._again.discard(stage)
            try:
                handled = await self.service.run_pass(stage)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(kv("stage pass failed", stage=stage, error=type(exc).__name__,
                             reason=str(exc)[:200]))
                handled = 0
            if stage not in self._again and handled < self.batch_size:
                return

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until no stage pass is running (tests use it to settle)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self._tasks and loop.time() < end:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, end - loop.time()))

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking work, let running passes finish (or cancel them after `grace_s`; their
        rows' leases are released on the way out)."""
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        pending = set(self._tasks)
        if pending:
            done, pending = await asyncio.wait(pending, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._started:  # an app refused at start (kiebot/app.py) stops without a word
            log.info(kv("jobs stopped", cancelled=len(pending)))
