"""Broadcasts: an admin's message to a segment of users, sent at Telegram's pace by one worker.

`BroadcastService` is what the /broadcast handlers use (count a segment, a draft, start, pause,
resume, cancel). `BroadcastRunner.run()` is a periodic job of the worker role (kiebot/app.py):
each pass claims the oldest broadcast with work under a lease (so two processes never both send
one), then claims its recipients a batch at a time pending → sending in the database, sends them
through the process's ChatSender and writes each outcome.

No recipient gets a second copy, whatever dies when:
- a row is claimed (a compare-and-set in the database) before its message is sent, so two
  passes or processes never send the same row;
- a row is written "sent" after Telegram answered; a process that dies between the two leaves it
  in "sending", and the next pass to claim the broadcast turns it into "unknown" and never sends
  it again: the message may well have arrived, and one missing message is better than two. The
  admin's report counts such rows, so nothing is silently lost; a batch is small (BATCH) and
  written as soon as it is answered, so a crash leaves at most that many unknown.

Pacing: the ChatSender paces every message of the process (30 per second overall, one per second
per chat, 429's retry_after waited out) and gives deliveries' messages the slot first
(`cosmetic=True`); on top, broadcasts take at most `per_second` (BROADCAST_PER_SECOND) so
deliveries and replies always have room. A user who blocked the bot (403) is marked blocked
(users.blocked, so no later broadcast or delivery tries again) and never retried; a flood wait
longer than the sender may wait hands the row back (nothing was posted) for a later pass; any
other refusal counts as failed. Progress: the admin's card is edited at most every
`progress_s` seconds, and a final report (delivered, blocked, failed) is sent once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.methods import EditMessageText, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity
from kie_client.ratelimit import SlidingWindowLimiter
from storage.repository import Broadcast

from bot.delivery import (
    ChatBlockedError,
    ChatSender,
    FloodWaitError,
    SendFailedError,
    is_not_modified,
)
from bot.logging import kv

log = logging.getLogger(__name__)

BATCH = 20  # recipients claimed (and, after a crash, possibly unknown) at a time


class BroadcastView(Protocol):
    """The admin's texts (handlers.broadcast): the progress card and the final report."""

    def card(self, b: Broadcast, counts: dict[str, int]) -> tuple[str, InlineKeyboardMarkup | None]:
        ...

    def report(self, b: Broadcast, counts: dict[str, int]) -> str:
        ...


def message_for(chat_id: int, b: Broadcast) -> TelegramMethod:
    """Exactly what a recipient gets (the admin's preview is this too)."""
    markup = None
    if b.button_text and b.button_url:
        markup = InlineKeyboardMarkup(inline_keyboard=[[
            InlineKeyboardButton(text=b.button_text, url=b.button_url)]])
    entities = [MessageEntity.model_validate(e) for e in b.entities] if b.entities else None
    if b.kind == "photo":
        return SendPhoto(chat_id=chat_id, photo=b.photo, caption=b.text,
                         caption_entities=entities, reply_markup=markup, parse_mode=None)
    return SendMessage(chat_id=chat_id, text=b.text or "", entities=entities,
                       reply_markup=markup, parse_mode=None)


class BroadcastService:
    """The handlers' side: drafts and the admin's buttons; never sends to users itself."""

    def __init__(self, repository: Any) -> None:
        self.repository = repository

    async def count(self, segment: str, arg: Any = None) -> int:
        return await self.repository.count_segment(segment, arg)

    async def draft(self, **fields: Any) -> Broadcast:
        return await self.repository.create_broadcast(**fields)

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return await self.repository.get_broadcast(broadcast_id)

    async def counts(self, broadcast_id: int) -> dict[str, int]:
        return await self.repository.broadcast_counts(broadcast_id)

    async def start(self, broadcast_id: int, *, card_message_id: int) -> bool:
        return await self.repository.start_broadcast(broadcast_id, card_message_id=card_message_id)

    async def pause(self, broadcast_id: int) -> bool:
        return await self.repository.set_broadcast_state(
            broadcast_id, from_states=("running",), to_state="paused")

    async def resume(self, broadcast_id: int) -> bool:
        return await self.repository.set_broadcast_state(
            broadcast_id, from_states=("paused",), to_state="running")

    async def cancel(self, broadcast_id: int) -> bool:
        return await self.repository.set_broadcast_state(
            broadcast_id, from_states=("draft", "running", "paused"), to_state="cancelled")


class BroadcastRunner:
    def __init__(self, repository: Any, sender: ChatSender, view: BroadcastView, *, owner: str,
                 lease_seconds: float = 30.0, per_second: int = 20, progress_s: float = 3.0,
                 pass_s: float = 5.0, batch: int = BATCH,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.repository = repository
        self.sender = sender
        self.view = view
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.progress_s = progress_s
        # A pass is bounded so that stopping the process waits for one short pass at most; the
        # next pass (the job's next tick) goes on where it stopped.
        self.pass_s = pass_s
        # A batch takes about a second (per_second) and at most a third of the lease (renewed
        # per batch), so Pause and Cancel act within a second or so and the lease never runs
        # out under a pass that is still sending.
        self.batch = max(1, min(batch, per_second, int(per_second * lease_seconds / 3)))
        self._clock = clock
        self._limiter = SlidingWindowLimiter(per_second, 1.0)
        self._edited_at: dict[int, float] = {}
        self._stopping = False

    def stop(self) -> None:
        """The process is stopping: a pass under way ends after its current batch (written and
        handed back, so the next process goes on at once, with nothing left unknown)."""
        self._stopping = True

    async def run(self) -> None:
        """One pass: some batches of the oldest broadcast with work, or its final report."""
        if self._stopping:
            return
        b = await self.repository.claim_broadcast(owner=self.owner,
                                                  lease_seconds=self.lease_seconds)
        if b is None:
            return
        if b.state != "running":
            await self._finish(b.id)
            return
        end = self._clock() + self.pass_s
        while True:
            state, ids = await self.repository.claim_recipients(
                b.id, owner=self.owner, lease_seconds=self.lease_seconds, limit=self.batch)
            if state == "lost":
                return
            if state == "cancelled":
                await self._finish(b.id)
                return
            if state != "running":  # paused: the card shows where it stopped
                await self._edit_card(b.id, force=True)
                break
            if not ids:
                if await self.repository.finish_broadcast(b.id, owner=self.owner):
                    log.info(kv("broadcast finished", broadcast=b.id))
                    await self._finish(b.id)
                    return
                break
            outcomes = await asyncio.gather(*(self._send(b, uid) for uid in ids))
            await self.repository.mark_recipients(b.id, list(outcomes))
            await self._edit_card(b.id)
            if (any(o == "pending" for _, o, _ in outcomes) or self._clock() >= end
                    or self._stopping):
                break  # a flood wait: let the chat's wait pass before trying it again
        await self.repository.release_broadcast(b.id, owner=self.owner)

    async def _send(self, b: Broadcast, user_id: int) -> tuple[int, str, str | None]:
        """(user id, outcome, error); never raises, so one bad chat cannot stop a batch whose
        other rows were sent (an exception would leave them all "unknown")."""
        try:
            await self._limiter.acquire()
            # cosmetic: a delivery waiting for the global budget gets the slot first.
            await self.sender.send(user_id, message_for(user_id, b), cosmetic=True)
            return user_id, "sent", None
        except ChatBlockedError:
            return user_id, "blocked", None
        except FloodWaitError:
            return user_id, "pending", "flood"
        except SendFailedError:
            return user_id, "failed", "unavailable"
        except TelegramBadRequest as exc:  # chat not found, a user who deleted their account…
            return user_id, "failed", f"bad_request:{str(exc)[:40]}"
        except TelegramAPIError as exc:
            return user_id, "failed", type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - counted as failed, the broadcast goes on
            log.warning(kv("broadcast send failed", broadcast=b.id, error=type(exc).__name__))
            return user_id, "failed", type(exc).__name__

    async def _edit_card(self, broadcast_id: int, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._edited_at.get(broadcast_id, -1e9) < self.progress_s:
            return
        self._edited_at[broadcast_id] = now
        b = await self.repository.get_broadcast(broadcast_id)
        if b is None or b.card_message_id is None:
            return
        text, markup = self.view.card(b, await self.repository.broadcast_counts(b.id))
        try:
            await self.sender.send(b.admin_id, EditMessageText(
                chat_id=b.admin_id, message_id=b.card_message_id, text=text,
                reply_markup=markup, parse_mode=None), cosmetic=not force)
        except TelegramBadRequest as exc:
            if not is_not_modified(exc):
                log.info(kv("broadcast card not edited", broadcast=b.id,
                            error=type(exc).__name__))
        except (TelegramAPIError, SendFailedError, ChatBlockedError) as exc:
            log.info(kv("broadcast card not edited", broadcast=b.id, error=type(exc).__name__))

    async def _finish(self, broadcast_id: int) -> None:
        """The final card, then the report: once (marked before it is sent — a crash between
        loses the report rather than sending it twice; the card shows the same numbers)."""
        await self._edit_card(broadcast_id, force=True)
        self._edited_at.pop(broadcast_id, None)
        if not await self.repository.mark_broadcast_reported(broadcast_id):
            return
        b = await self.repository.get_broadcast(broadcast_id)
        counts = await self.repository.broadcast_counts(broadcast_id)
        try:
            await self.sender.send(b.admin_id, SendMessage(
                chat_id=b.admin_id, text=self.view.report(b, counts), parse_mode=None))
        except (TelegramAPIError, SendFailedError, ChatBlockedError) as exc:
            log.warning(kv("broadcast report not delivered", broadcast=b.id,
                           error=type(exc).__name__))
