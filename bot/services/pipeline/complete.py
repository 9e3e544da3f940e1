"""Complete: record KIE's answer for a task, store its files, mark succeeded (or fail + refund).

A callback is acknowledged after one conditional UPDATE (Repository.accept_callback). Only
authenticated callbacks get here (per-generation token in the URL, which only KIE has; KIE's
HMAC when configured), so a success body listing result URLs is the record: the row moves to
`storing` with those URLs (kie_state CALLBACK_RESULTS) without recordInfo. Every download still
passes SafeDownloader's host allow-list, and when one of those URLs cannot be fetched the storer
asks recordInfo once before refusing or retrying. Fail callbacks (and success without URLs) only
wake the poller: a refund is decided by recordInfo, never by a body.

While a row is `storing`, its `result_urls` hold KIE's URLs (so a restarted storer knows what to
fetch); `succeeded` replaces them with our stored URLs and records the objects' paths in
`stored_paths`, which is what delivery and resends read.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import replace
from datetime import timedelta

from kie_client.errors import KieError, KieTaskNotFoundError
from kie_client.types import CallbackPayload, TaskRecord, TaskState
from storage.media import (
    MediaStoreError,
    MediaTooLargeError,
    StoredObject,
    extension_for,
    media_path,
)
from storage.models import Generation, GenerationStatus, Stage
from storage.repository import CALLBACK_RESULTS, CallbackNote, CallbackWrite

from bot.group_commit import GroupCommit
from bot.downloads import (
    DownloadError,
    DownloadExpiredError,
    DownloadRefusedError,
    DownloadTooLargeError,
)
from bot.logging import kv
from bot.services.pipeline.context import MEDIA_TOKEN_KEY, Pipeline

log = logging.getLogger("bot.pipeline.complete")

QUEUED = GenerationStatus.queued
SUBMIT_UNKNOWN = GenerationStatus.submit_unknown
GENERATING = GenerationStatus.generating
STORING = GenerationStatus.storing


class CallbackOutcome(enum.Enum):
    accepted = "accepted"
    unknown_generation = "unknown_generation"
    task_mismatch = "task_mismatch"


def failure_reason(record: TaskRecord) -> str:
    message = (record.fail_msg or "").strip()
    if message:
        return f"KIE could not generate this: {message[:300]}"
    return "KIE could not generate this"


def result_timestamp(g: Generation) -> int:
    """The timestamp in a result's object name: when KIE finished (set on `storing`), so a
    storer that runs again after a crash writes the same objects instead of new ones."""
    stamp = g.completed_at or g.created_at
    return int(stamp.timestamp()) if stamp else 0


def _outcome_counts(written: list[CallbackWrite]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in written:
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
    return counts


def _id_list(notes: list[CallbackNote]) -> str:
    """The batch's generation ids, comma-separated (grep finds a generation's callback)."""
    return ",".join(str(note.generation_id) for note in notes)


class Completer:
    def __init__(self, pipeline: Pipeline, fail) -> None:
        self.p = pipeline
        self._fail = fail  # async (generation, reason, fail_code): fail + refund + deliver
        self._callbacks: GroupCommit[CallbackNote, CallbackWrite] = GroupCommit(
            self._write_callbacks, name="callback-group-commit", max_batch=200)

    async def _write_callbacks(self, notes: list[CallbackNote]) -> list[CallbackWrite]:
        written = await self.p.repository.accept_callbacks(notes, now=self.p.clock())
        # One line per batch, not per callback: under a burst of 200 the per-callback line
        # (formatted, redacted, written) was a sixth of the answering process's CPU.
        log.info(kv("callbacks received", count=len(notes),
                    **_outcome_counts(written), generations=_id_list(notes)))
        return written

    # -- callback (server) -------------------------------------------------------------------

    async def accept_callback(self, generation_id: int, payload: CallbackPayload) -> CallbackOutcome:
        """Persist the callback in one small write (shared with the callbacks arriving at the
        same time: GroupCommit) and return; the stages do the work.

        Only authenticated callbacks get here (the server checked the per-generation token in
        the URL, which only KIE has, and KIE's HMAC signature when configured), so a success
        body that lists result URLs is taken as the record: the row moves straight to
        `storing` with them, without recordInfo (10/s for the whole account would cap delivery
        of results finishing together). Every download still goes through SafeDownloader's
        host allow-list, and a failed one falls back to recordInfo (store below). Any other
        callback (fail, or success without URLs) only wakes the poller, which confirms with
        recordInfo — a refund is money, so it is never decided by a body alone. Repeats are
        harmless: the write is a compare-and-set."""
        p = self.p
        record = payload.record
        state = payload.state.value if payload.state is not None else None
        results = (list(record.result_urls)
                   if record is not None and record.state is TaskState.SUCCESS
                   and record.result_urls else None)
        written = await self._callbacks.submit(CallbackNote(
            generation_id, payload.task_id, state, None if results is None else tuple(results)))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(kv("callback received", task_id=payload.task_id, state=state,
                         code=payload.code, generation=generation_id, outcome=written.value))
        if written is CallbackWrite.unknown:
            return CallbackOutcome.unknown_generation
        if written is CallbackWrite.mismatch:
            log.warning(kv("callback task mismatch", generation=generation_id,
                           task_id=payload.task_id))
            return CallbackOutcome.task_mismatch
        if written is CallbackWrite.storing:
            p.kick(Stage.store)
        elif written is CallbackWrite.woken:
            p.kick(Stage.poll)
        return CallbackOutcome.accepted

    # -- poll stage ---------------------------------------------------------------------------

    async def poll(self, g: Generation) -> None:
        """Handle one claimed generating/submit_unknown row."""
        p = self.p
        now = p.clock()
        if g.status not in (GENERATING, SUBMIT_UNKNOWN):
            return
        if not g.task_id:
            started = g.submitted_at or g.created_at or now
            if now - started >= p.config.submit_unknown_window:
                await self._fail(g, "KIE did not confirm the task in time", None)
            else:
                await p.repository.update_fields(
                    g.id, next_poll_at=started + p.config.submit_unknown_window
                )
            return
        try:
            record = await p.provider_for(g).fetch(g.task_id)
        except KieTaskNotFoundError:
            # Just created tasks can be briefly invisible; the expirer ends hopeless cases.
            await self._reschedule(g, None)
            return
        except KieError as exc:
            if exc.retryable:
                log.warning(kv("recordInfo deferred", generation=g.id, error=type(exc).__name__))
                await self._reschedule(g, None)
                return
            log.error(kv("recordInfo failed", generation=g.id, error=type(exc).__name__))
            await self._reschedule(g, None)
            return
        await self.apply_record(g, record)

    async def _reschedule(self, g: Generation, state: str | None) -> None:
        now = self.p.clock()
        fields = {
            "poll_attempts": g.poll_attempts + 1,
            "next_poll_at": now + timedelta(seconds=self.p.config.poll_delay(g, now)),
        }
        if state is not None:
            fields["kie_state"] = state
        await self.p.repository.update_fields(g.id, **fields)

    async def apply_record(self, g: Generation, record: TaskRecord) -> None:
        p = self.p
        state = record.state.value
        now = p.clock()
        if state == "success":
            if not record.result_urls:
                await self._fail(g, "KIE finished without a result file", None)
                return
            moved = await p.repository.transition(
                g.id, from_statuses={GENERATING, SUBMIT_UNKNOWN}, to_status=STORING,
                kie_state=state, result_urls=list(record.result_urls), completed_at=now, now=now,
            )
            if moved:
                # transition() drops the lease; the store stage claims the row afresh.
                p.kick(Stage.store)
        elif state == "fail":
            log.info(kv("task failed", task_id=g.task_id, generation=g.id, fail_code=record.fail_code))
            await self._fail(g, failure_reason(record), record.fail_code)
        else:
            await self._reschedule(g, state)

    # -- store stage --------------------------------------------------------------------------

    async def store(self, g: Generation) -> None:
        """Download every KIE result of a claimed `storing` row into our media store."""
        p = self.p
        if g.status != STORING:
            return
        stored: list[StoredObject] = []
        try:
            for index, url in enumerate(g.result_urls):
                stored.append(await self._store_one(g, index, url))
        except (DownloadError, KieError) as exc:
            if g.kie_state == CALLBACK_RESULTS:
                # The URLs came from the callback's body: before refusing or retrying them,
                # ask recordInfo what the results are (once; it records the answer).
                log.info(kv("callback results not fetched; asking recordInfo", generation=g.id,
                            error=type(exc).__name__))
                confirmed = await self._confirm(g)
                if confirmed is not None:
                    await self.store(confirmed)
                return
            await self._store_failed(g, exc)
            return
        except MediaStoreError as exc:
            await self._store_failed(g, exc)
            return
        moved = await p.repository.transition(
            g.id, from_statuses={STORING}, to_status=GenerationStatus.succeeded,
            result_urls=[obj.url for obj in stored], stored_paths=[obj.path for obj in stored],
            preview_url=stored[0].url if stored else None,
            # Keep the storing timestamp: a storer run again writes the same objects.
            completed_at=g.completed_at, now=p.clock(),
        )
        log.info(kv(f"stored {len(stored)} file{'s' if len(stored) != 1 else ''}", generation=g.id))
        if moved:
            p.kick(Stage.deliver)

    async def _store_failed(self, g: Generation, exc: Exception) -> None:
        p = self.p
        if isinstance(exc, MediaStoreError) and not isinstance(exc, MediaTooLargeError) \
                and not exc.retryable:
            # Our own store refuses the write (a read-only MEDIA_DIR, a bad bucket): waiting
            # 20 s will not cure it. Counted, backed off, alerted and bounded by the stage's
            # failure handling (bot/services/pipeline/failures.py), not left to the expiry.
            raise exc
        if isinstance(exc, (DownloadRefusedError, MediaTooLargeError)):
            log.warning(kv("result refused", generation=g.id, reason=str(exc)))
            reason = (DownloadTooLargeError.user_reason if isinstance(exc, MediaTooLargeError)
                      else exc.user_reason)
            await self._fail(g, reason, None)
            return
        # Transient: leave the row in `storing`; the storer retries until the deadline.
        log.warning(kv("store deferred", generation=g.id, error=type(exc).__name__,
                       reason=str(exc)))
        await p.defer(g)

    async def _confirm(self, g: Generation) -> Generation | None:
        """recordInfo for a row stored from a callback's URLs that could not be fetched. The row
        with recordInfo's URLs to store, or None when it was failed or deferred instead."""
        p = self.p
        try:
            record = await p.provider_for(g).fetch(g.task_id or "")
        except KieError as exc:
            log.warning(kv("recordInfo deferred", generation=g.id, error=type(exc).__name__))
            await p.defer(g)  # still CALLBACK_RESULTS: the next try asks again
            return None
        if record.state is TaskState.FAIL:
            log.info(kv("task failed", task_id=g.task_id, generation=g.id,
                        fail_code=record.fail_code))
            await self._fail(g, failure_reason(record), record.fail_code)
            return None
        if record.state is not TaskState.SUCCESS or not record.result_urls:
            if record.state is TaskState.SUCCESS:
                await self._fail(g, "KIE finished without a result file", None)
            else:  # recordInfo lags behind the callback: try again later
                await p.defer(g)
            return None
        urls = list(record.result_urls)
        if not await p.repository.confirm_results(g.id, result_urls=urls,
                                                  kie_state=TaskState.SUCCESS.value):
            return None  # no longer storing: someone else finished it
        return replace(g, result_urls=urls, kie_state=TaskState.SUCCESS.value)

    async def _store_one(self, g: Generation, index: int, url: str) -> StoredObject:
        p = self.p
        try:
            return await self._fetch(g, index, url)
        except DownloadExpiredError:
            # KIE's temporary link expired: ask once for a fresh one.
            fresh = await p.kie.get_download_url(url)
            log.info(kv("fresh download link", generation=g.id, index=index))
            return await self._fetch(g, index, fresh, name_url=url)

    async def _fetch(self, g: Generation, index: int, url: str, *,
                     name_url: str | None = None) -> StoredObject:
        p = self.p
        # A request through httpx is a millisecond or two of CPU before it waits: sixteen rows
        # starting theirs in one loop turn held a callback for 24 ms. One share of the loop each.
        await p.yield_to_acks()
        async with p.downloader.open(url) as download:
            ext = extension_for(download.content_type, name_url or url)
            if ext == "bin":
                ext = "mp4" if g.kind == "video" else "jpg"
            token = (g.options or {}).get(MEDIA_TOKEN_KEY)
            path = media_path(g.user_id, g.kind, g.id, index, result_timestamp(g), ext,
                              token=token if isinstance(token, str) and token else None)
            content_type = download.content_type or ("video/mp4" if ext == "mp4" else "image/jpeg")
            return await p.media.put(path, download.chunks, content_type=content_type,
                                     max_bytes=p.config.max_result_bytes)
