"""Deliver: send a final generation's media (or its failure) to the chat, once; show progress.

Delivery is recorded (mark_delivered) right after Telegram accepted the message. A crash between
the two sends the result again after restart — at most one duplicate, never a lost result.
Another process never sends it too: the row's lease is kept alive while it is worked on
(RowLease.keep_alive) and re-checked right before each send (RowLease.renew), so a send slower
than LEASE_SECONDS does not hand the row to a second deliverer.

Media are streamed from the media store into the multipart upload (StoredInputFile): a 45 MB
video is never held in memory whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge, TelegramNotFound
from aiogram.methods import (
    EditMessageText,
    SendChatAction,
    SendDocument,
    SendMessage,
    SendPhoto,
    SendVideo,
)
from aiogram.types import InputFile
from storage.media import MediaStore, MediaStoreError
from storage.models import Generation, GenerationStatus

from bot.delivery import ChatBlockedError, SendFailedError, is_not_modified
from bot.logging import kv
from bot.services.pipeline.context import DEFER_SECONDS, Pipeline, RowLease
from bot.services.pipeline.variants import order_of, order_rows, send_order

log = logging.getLogger("bot.pipeline.deliver")

PHOTO_LIMIT = 10 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
CANCELLED = "cancelled"
SUCCEEDED = GenerationStatus.succeeded


class StoredInputFile(InputFile):
    """A stored object as an aiogram upload, read chunk by chunk while the request is sent.

    aiogram's session puts `read(bot)` into the multipart body as an async iterable, and calls it
    again for every attempt, so each attempt (a 429 retry, the send-as-document fallback) opens a
    fresh stream from the store."""

    def __init__(self, media: MediaStore, path: str, filename: str) -> None:
        super().__init__(filename=filename)
        self.media = media
        self.path = path

    async def read(self, bot):  # noqa: ARG002 - aiogram's signature
        chunks = await self.media.open_stream(self.path)
        async for chunk in chunks:
            yield chunk


class LeaseLostError(Exception):
    """Another process holds the row now: this one must not send."""


class Deliverer:
    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline

    async def _language(self, g: Generation) -> tuple[str | None, bool]:
        user = await self.p.repository.get_user(g.user_id)
        if user is None:
            return None, False
        return user.language, user.blocked

    async def deliver(self, g: Generation, *, lease: RowLease | None = None) -> bool:
        """Deliver one claimed final row. True when recorded as delivered. With `lease`, the
        row's lease is re-checked before each send and nothing is sent once it is lost."""
        p = self.p
        if not g.is_final or g.delivered_at is not None:
            return False
        order = order_of(g)  # a row of a variant order: the lead sends the order's album
        if order is not None and order[0] != 1:
            return await p.repository.mark_delivered(g.id, now=p.clock())
        rows = await order_rows(self, g) if order is not None else None
        if order is not None and rows is None:
            return False  # other rows of the order still run
        if order is None and g.status == GenerationStatus.failed and g.error == CANCELLED:
            # The user pressed Cancel and the handler already answered.
            return await p.repository.mark_delivered(g.id, now=p.clock())
        language, blocked = await self._language(g)
        if blocked:
            return False
        started = p.clock()
        try:
            # (The card edit is harmless to repeat; the lease is checked before each message.)
            await self._finish_card(g, language)
            if rows is not None:
                await send_order(self, rows, language=language, lease=lease)
            elif g.status == SUCCEEDED:
                await self.send_results(g, chat_id=g.chat_id, language=language, lease=lease)
            else:
                rendered = p.presenter.failure(g, language=language)
                await _still_ours(lease)
                await p.sender.send(g.chat_id, SendMessage(
                    chat_id=g.chat_id, text=rendered.text, reply_markup=rendered.reply_markup))
        except LeaseLostError:
            log.warning(kv("lease lost; not sending", generation=g.id))
            return False
        except ChatBlockedError:
            # Not if they wrote to us meanwhile: that message unblocked them after this send began.
            await p.repository.mark_unreachable(g.user_id, since=started)
            log.info(kv("user blocked the bot; delivery stopped", generation=g.id, user=g.user_id))
            return False
        except SendFailedError as exc:
            log.warning(kv("delivery deferred", generation=g.id, reason=str(exc)))
            await p.defer(g)
            return False
        except MediaStoreError as exc:
            if not exc.retryable:
                # The stored file is gone or unreadable: counted and bounded by the stage's
                # failure handling (bot/services/pipeline/failures.py), not retried forever.
                raise
            log.warning(kv("stored result unreadable for now", generation=g.id,
                           error=type(exc).__name__))
            await p.defer(g, seconds=5 * DEFER_SECONDS)
            return False
        except (TelegramBadRequest, TelegramEntityTooLarge, TelegramNotFound) as exc:
            # Telegram refuses this content for good (a 400 does not change on retry): without
            # this the deliverer would resend it every pass, forever. Fall back to a plain
            # message with the stored file's link, which carries nothing Telegram can refuse.
            log.error(kv("delivery refused by telegram; sending a link", generation=g.id,
                         reason=str(exc)[:200]))
            if not await self._send_link_instead(g, language):
                return False
        done = await p.repository.mark_delivered(g.id, now=p.clock())
        log.info(kv("delivered", generation=g.id, status=g.status))
        return done

    async def _send_link_instead(self, g: Generation, language: str | None) -> bool:
        p = self.p
        try:
            if g.status == SUCCEEDED and g.stored_paths:
                url = await p.media.share_url(g.stored_paths[0])
                rendered = p.presenter.link_instead(g, url, language=language)
                text = rendered.text
            else:
                text = p.presenter.failure(g, language=language).text
            await p.sender.send(g.chat_id, SendMessage(chat_id=g.chat_id, text=text[:4096]))
        except (TelegramBadRequest, MediaStoreError) as exc:
            log.error(kv("link fallback failed; result stays in the library", generation=g.id,
                         error=type(exc).__name__))
        except (SendFailedError, ChatBlockedError):
            return False  # transient or blocked: the next pass (or the unblock) tries again
        return True

    async def send_results(self, g: Generation, *, chat_id: int, language: str | None,
                           as_document: bool = False, lease: RowLease | None = None) -> None:
        p = self.p
        for index, path in enumerate(g.stored_paths):
            first = index == 0
            caption = p.presenter.result_caption(g, language=language) if first else None
            markup = p.presenter.result_markup(g, language=language) if first else None
            size = await p.media.size(path)  # a missing object raises here, before any send
            await p.yield_to_acks()  # building and sending an upload: a share of the loop each
            await _still_ours(lease)
            if size > UPLOAD_LIMIT:
                rendered = p.presenter.link_instead(g, await p.media.share_url(path),
                                                    language=language)
                await p.sender.send(chat_id, SendMessage(
                    chat_id=chat_id, text=rendered.text, reply_markup=rendered.reply_markup))
                continue
            name = path.rsplit("/", 1)[-1]
            upload = StoredInputFile(p.media, path, name)
            if as_document or (g.kind != "video" and size > PHOTO_LIMIT):
                method = SendDocument(chat_id=chat_id, document=upload, caption=caption,
                                      reply_markup=markup)
            elif g.kind == "video":
                method = SendVideo(chat_id=chat_id, video=upload, caption=caption,
                                   reply_markup=markup, supports_streaming=True)
            else:
                method = SendPhoto(chat_id=chat_id, photo=upload, caption=caption,
                                   reply_markup=markup)
            try:
                await p.sender.send(chat_id, method)
            except TelegramBadRequest as exc:
                # E.g. a photo Telegram will not take (dimensions): the file still reaches the user.
                log.warning(kv("send refused; sending as document", generation=g.id,
                               reason=str(exc)[:200]))
                await _still_ours(lease)
                await p.sender.send(chat_id, SendDocument(
                    chat_id=chat_id, document=StoredInputFile(p.media, path, name),
                    caption=caption, reply_markup=markup))

    async def _finish_card(self, g: Generation, language: str | None) -> None:
        """Best effort: turn the status card into its final state."""
        if not g.progress_message_id:
            return
        rendered = self.p.presenter.status(g, language=language, position=None,
                                           elapsed_s=_elapsed(g))
        try:
            await self.p.sender.send(g.chat_id, EditMessageText(
                chat_id=g.chat_id, message_id=g.progress_message_id, text=rendered.text,
                reply_markup=rendered.reply_markup))
        except TelegramBadRequest:
            pass  # not modified, or the user deleted the card


async def _still_ours(lease: RowLease | None) -> None:
    if lease is not None and not await lease.renew():
        raise LeaseLostError


def _elapsed(g: Generation) -> float:
    end = g.completed_at or g.updated_at
    if g.created_at and end:
        return max(0.0, (end - g.created_at).total_seconds())
    return 0.0


@dataclass
class _Tracked:
    chat_id: int
    message_id: int
    last_edit: float = 0.0
    last_text: str | None = None


class ProgressTracker:
    """Edits each running generation's status card (≤ once per interval) and shows a chat action.

    In-memory on purpose: progress is cosmetic. After a restart a row is tracked again as soon
    as a stage touches it.
    """

    def __init__(self, pipeline: Pipeline, *, monotonic) -> None:
        self.p = pipeline
        self._monotonic = monotonic
        self._tracked: dict[int, _Tracked] = {}

    def track(self, g: Generation) -> None:
        if g.progress_message_id and not g.is_final and g.id not in self._tracked:
            self._tracked[g.id] = _Tracked(g.chat_id, g.progress_message_id)

    def __len__(self) -> int:
        return len(self._tracked)

    async def tick(self) -> None:
        p = self.p
        now = self._monotonic()
        due = [gid for gid, entry in self._tracked.items()
               if now - entry.last_edit >= p.config.progress_interval_s]
        if not due:
            return
        # One query for every due card (its row, the user's language, the queue position).
        view = {g.id: (g, language, position)
                for g, language, position in await p.repository.progress_view(due)}
        for gid in due:
            entry = self._tracked.get(gid)
            found = view.get(gid)
            if entry is None:
                continue
            if found is None or found[0].is_final:
                self._tracked.pop(gid, None)
                continue
            g, language, position = found
            # Cosmetic: each card waits for acknowledgements in flight and its share of the loop.
            await p.yield_to_acks()
            entry.last_edit = self._monotonic()
            started = p.clock()
            try:
                await self._update(g, entry, language, position)
                # The sender may hold an edit back (a flood wait, deliveries first): space the
                # next one from when this one went out, not from when it was decided.
                entry.last_edit = self._monotonic()
            except ChatBlockedError:
                await p.repository.mark_unreachable(g.user_id, since=started)
                self._tracked.pop(gid, None)
            except (SendFailedError, TelegramBadRequest) as exc:
                if isinstance(exc, TelegramBadRequest) and not is_not_modified(exc):
                    self._tracked.pop(gid, None)  # card deleted: stop editing it

    async def _update(self, g: Generation, entry: _Tracked, language: str | None,
                      position: int) -> None:
        p = self.p
        queued = g.status == GenerationStatus.queued
        elapsed = (p.clock() - g.created_at).total_seconds() if g.created_at else 0.0
        rendered = p.presenter.status(g, language=language,
                                      position=position if queued else None, elapsed_s=elapsed)
        if rendered.text != entry.last_text:
            await p.sender.send(g.chat_id, EditMessageText(
                chat_id=g.chat_id, message_id=entry.message_id, text=rendered.text,
                reply_markup=rendered.reply_markup), cosmetic=True)
            entry.last_text = rendered.text
        if g.status in (GenerationStatus.generating, GenerationStatus.storing):
            action = "upload_video" if g.kind == "video" else "upload_photo"
            await p.sender.send(g.chat_id, SendChatAction(chat_id=g.chat_id, action=action),
                                cosmetic=True)
