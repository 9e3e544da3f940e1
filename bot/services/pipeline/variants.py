"""Delivering a variant order (storage/repository/_variants.py): N rows made by one Generate,
sent as ONE album (sendMediaGroup) with the follow-up buttons in a message after it.

The lead row (variant 1, the card's request key) delivers the whole order, once every row of it
is final; the other rows are recorded as delivered as soon as they are final, without a message
of their own (their picture goes into the lead's album). Money is per row and untouched here: a
row KIE failed was refunded its own share when it failed (the refund row is unique per
generation), and the note after the album says so. A crash between the album and
mark_delivered sends the album again (at most one duplicate, as for a single result).
"""

from __future__ import annotations

import logging

from aiogram.methods import SendMediaGroup, SendMessage
from aiogram.types import InputMediaDocument, InputMediaPhoto
from storage.models import Generation, GenerationStatus

from bot.logging import kv

log = logging.getLogger("bot.pipeline.deliver")

VARIANT_KEY = "_variant"  # 1-based index of the row in its order (storage/repository/_variants.py)
VARIANTS_KEY = "_variants"  # the order's size
WAIT_FOR_SIBLINGS_S = 1.0  # the lead looks again this soon while other rows still run


def order_of(g: Generation) -> tuple[int, int] | None:
    """(index, count) of a row of a variant order, else None."""
    options = g.options or {}
    count, index = options.get(VARIANTS_KEY), options.get(VARIANT_KEY)
    if isinstance(count, int) and isinstance(index, int) and count > 1:
        return index, count
    return None


async def order_rows(deliverer, g: Generation) -> list[Generation] | None:
    """Every row of the lead's order, or None while any of them still runs (the lead is
    deferred a moment; the last row to finish kicks the deliverer anyway)."""
    p = deliverer.p
    _, count = order_of(g)
    rows = await p.repository.variant_rows(g.user_id, g.request_key, count)
    if any(not r.is_final for r in rows):
        await p.defer(g, seconds=WAIT_FOR_SIBLINGS_S)
        return None
    return rows


async def send_order(deliverer, rows: list[Generation], *, language: str | None, lease) -> None:
    """The album of the pictures made (one picture: a normal result), then the note with the
    follow-up buttons; nothing made: one failure message naming the refund."""
    from bot.services.pipeline.deliver import PHOTO_LIMIT, StoredInputFile, _still_ours

    p = deliverer.p
    lead = rows[0]
    made = [r for r in rows if r.status == GenerationStatus.succeeded and r.stored_paths]
    failed = [r for r in rows if r not in made]
    if not made:
        if all(r.error == "cancelled" for r in failed):
            return  # the user cancelled the order; the Cancel button already answered
        text = _note(p.presenter, "variants_failed", made, failed, language,
                     fallback=p.presenter.failure(lead, language=language).text)
        await _still_ours(lease)
        await p.sender.send(lead.chat_id, SendMessage(chat_id=lead.chat_id, text=text))
        return
    if len(made) == 1:
        await deliverer.send_results(made[0], chat_id=lead.chat_id, language=language, lease=lease)
    else:
        sizes = [await p.media.size(r.stored_paths[0]) for r in made]  # missing: raises first
        as_document = any(size > PHOTO_LIMIT for size in sizes)
        caption = p.presenter.result_caption(made[0], language=language)
        kind = InputMediaDocument if as_document else InputMediaPhoto
        media = [kind(media=StoredInputFile(p.media, r.stored_paths[0],
                                            r.stored_paths[0].rsplit("/", 1)[-1]),
                      caption=caption if i == 0 else None) for i, r in enumerate(made)]
        await _still_ours(lease)
        await p.sender.send(lead.chat_id, SendMediaGroup(chat_id=lead.chat_id, media=media))
    if len(made) == 1 and not failed:
        return
    rendered = _rendered(p.presenter, made, failed, language)
    await _still_ours(lease)
    await p.sender.send(lead.chat_id, SendMessage(chat_id=lead.chat_id, text=rendered[0],
                                                  reply_markup=rendered[1]))
    log.info(kv("variants delivered", generation=lead.id, made=len(made), failed=len(failed)))


def _rendered(presenter, made, failed, language):
    note = getattr(presenter, "variants_note", None)
    if note is not None:
        r = note(made, failed, language=language)
        return r.text, r.reply_markup
    markup = presenter.result_markup(made[0], language=language)
    return f"{len(made)} of {len(made) + len(failed)} variants", markup


def _note(presenter, method: str, made, failed, language, *, fallback: str) -> str:
    render = getattr(presenter, method, None)
    return render(made, failed, language=language).text if render is not None else fallback
