"""/broadcast (admins): compose → link button → audience → preview → send, then the card's
Pause / Resume / Cancel. The sending itself is the worker's job (bot/services/broadcast.py); this
module only writes the draft and the admin's decisions, and gives the worker its texts
(`BroadcastTexts`: the progress card and the final report, in the admin's language).

The compose steps are FSM states of their own (kept here, not in handlers.states, because only
this module uses them); the composed message waits in FSM data under `bc_*` keys, and the draft
row is written only once the audience is chosen.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.services.broadcast import BroadcastService, message_for
from handlers import keyboards
from handlers.admin import IsAdmin
from handlers.callbacks import BcAction, BcCb, BcSegment
from handlers.filters import Magic
from handlers.texts import tr
from storage.repository import Broadcast

log = logging.getLogger(__name__)

_BUTTON = re.compile(r"^(?P<text>[^|]{1,64}?)\s*\|\s*(?P<url>https?://\S{1,500})$", re.S)
_NUMBERS = {BcSegment.ACTIVE: (1, 3650), BcSegment.BALANCE: (0, 10**9)}
_KEYS = ("bc_kind", "bc_text", "bc_entities", "bc_photo", "bc_button_text", "bc_button_url",
         "bc_segment")


class Compose(StatesGroup):
    message = State()
    button = State()
    number = State()


def segment_label(lang: str, segment: str, arg: str | None) -> str:
    if segment == "lang":
        return tr(lang, f"bc_seg_lang_{arg}")
    if segment in ("active", "balance"):
        return tr(lang, f"bc_seg_{segment}", n=arg)
    return tr(lang, f"bc_seg_{segment}")


class BroadcastTexts:
    """What the worker shows the admin (bot.services.broadcast.BroadcastView)."""

    def card(self, b: Broadcast, counts: dict[str, int]) -> tuple[str, InlineKeyboardMarkup | None]:
        lang = b.lang
        segment = segment_label(lang, b.segment, b.segment_arg)
        head = tr(lang, f"bc_card_{b.state}", id=b.id, segment=segment)
        if b.state == "draft":
            return head, keyboards.bc_card_kb(lang, b.id, b.state, b.total)
        done = counts["sent"] + counts["blocked"] + counts["failed"] + counts["unknown"]
        line = tr(lang, "bc_progress", done=done, total=b.total, sent=counts["sent"],
                  blocked=counts["blocked"], failed=counts["failed"])
        return f"{head}\n{line}", keyboards.bc_card_kb(lang, b.id, b.state)

    def report(self, b: Broadcast, counts: dict[str, int]) -> str:
        lang = b.lang
        lines = [tr(lang, "bc_report", id=b.id, sent=counts["sent"], blocked=counts["blocked"],
                    failed=counts["failed"])]
        if counts["pending"]:
            lines.append(tr(lang, "bc_report_unsent", n=counts["pending"]))
        if counts["unknown"]:
            lines.append(tr(lang, "bc_report_unknown", n=counts["unknown"]))
        return "\n".join(lines)


_TEXTS = BroadcastTexts()


async def _forget(state: FSMContext) -> None:
    """Leave the compose steps; other FSM data (a generation draft) stays as it was."""
    data = await state.get_data()
    await state.set_data({k: v for k, v in data.items() if k not in _KEYS})
    await state.set_state(None)


async def start_compose(message: Message, state: FSMContext, lang: str) -> None:
    await _forget(state)
    await state.set_state(Compose.message)
    await message.answer(tr(lang, "bc_compose"), reply_markup=keyboards.bc_abort_kb(lang))


def _entities(items: Any) -> list[dict[str, Any]] | None:
    return [e.model_dump(mode="json", exclude_none=True) for e in items] if items else None


async def got_message(message: Message, state: FSMContext, lang: str) -> None:
    if message.photo:
        content = {"bc_kind": "photo", "bc_photo": message.photo[-1].file_id,
                   "bc_text": message.caption, "bc_entities": _entities(message.caption_entities)}
    elif message.text and not message.text.startswith("/"):
        content = {"bc_kind": "text", "bc_photo": None, "bc_text": message.text,
                   "bc_entities": _entities(message.entities)}
    else:
        await message.answer(tr(lang, "bc_bad_content"), reply_markup=keyboards.bc_abort_kb(lang))
        return
    await state.update_data(**content, bc_button_text=None, bc_button_url=None)
    await state.set_state(Compose.button)
    await message.answer(tr(lang, "bc_button_ask"), reply_markup=keyboards.bc_button_kb(lang))


async def got_button(message: Message, state: FSMContext, lang: str) -> None:
    match = _BUTTON.match((message.text or "").strip())
    if match is None or not match.group("text").strip():
        await message.answer(tr(lang, "bc_bad_button"), reply_markup=keyboards.bc_button_kb(lang))
        return
    await state.update_data(bc_button_text=match.group("text").strip(),
                            bc_button_url=match.group("url"))
    await _ask_segment(message, state, lang)


async def skip_button(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    await query.answer()
    if await state.get_state() != Compose.button.state:
        return  # an old card's button: the compose went on or ended already
    await _ask_segment(query.message, state, lang)


async def _ask_segment(message: Message, state: FSMContext, lang: str) -> None:
    await state.set_state(None)  # the audience is a button; a number is asked for when needed
    await message.answer(tr(lang, "bc_segment_ask"), reply_markup=keyboards.bc_segments_kb(lang))


async def pick_segment(query: CallbackQuery, callback_data: BcCb, state: FSMContext, lang: str,
                       bot: Bot, broadcasts: BroadcastService) -> None:
    await query.answer()
    data = await state.get_data()
    if not data.get("bc_kind"):
        return  # composed message gone (already previewed, or aborted)
    segment = callback_data.segment
    if segment in _NUMBERS:
        await state.update_data(bc_segment=segment.value)
        await state.set_state(Compose.number)
        await query.message.answer(tr(lang, f"bc_ask_{segment.value}"),
                                   reply_markup=keyboards.bc_abort_kb(lang))
        return
    if segment in (BcSegment.RU, BcSegment.EN):
        await _preview(query.message, state, lang, bot, broadcasts, "lang", segment.value)
    elif segment in (BcSegment.ALL, BcSegment.PAYING):
        await _preview(query.message, state, lang, bot, broadcasts, segment.value, None)


async def got_number(message: Message, state: FSMContext, lang: str, bot: Bot,
                     broadcasts: BroadcastService) -> None:
    data = await state.get_data()
    segment = BcSegment(data.get("bc_segment") or BcSegment.ACTIVE)
    low, high = _NUMBERS.get(segment, _NUMBERS[BcSegment.ACTIVE])
    text = (message.text or "").strip()
    if not text.isdigit() or not low <= int(text) <= high:
        await message.answer(tr(lang, "bc_bad_number", low=low, high=high),
                             reply_markup=keyboards.bc_abort_kb(lang))
        return
    await _preview(message, state, lang, bot, broadcasts, segment.value, int(text))


async def _preview(message: Message, state: FSMContext, lang: str, bot: Bot,
                   broadcasts: BroadcastService, segment: str, arg: Any) -> None:
    """The draft row, the exact message in the admin's chat, then the card with the count."""
    data = await state.get_data()
    await _forget(state)
    count = await broadcasts.count(segment, arg)
    if not count:
        await message.answer(tr(lang, "bc_no_recipients"))
        return
    draft = await broadcasts.draft(
        admin_id=message.chat.id, lang=lang, kind=data["bc_kind"], text=data.get("bc_text"),
        entities=data.get("bc_entities"), photo=data.get("bc_photo"),
        button_text=data.get("bc_button_text"), button_url=data.get("bc_button_url"),
        segment=segment, segment_arg=arg)
    try:
        await bot(message_for(message.chat.id, draft))
    except TelegramBadRequest as exc:  # e.g. a link Telegram does not accept on a button
        await broadcasts.cancel(draft.id)
        await message.answer(tr(lang, "bc_preview_failed", reason=_reason(exc)))
        return
    label = segment_label(lang, segment, draft.segment_arg)
    await message.answer(tr(lang, "bc_preview", segment=label, n=count),
                         reply_markup=keyboards.bc_card_kb(lang, draft.id, "draft", count))


def _reason(exc: TelegramAPIError) -> str:
    found = re.search(r"\b[A-Z][A-Z0-9_]{3,}\b", getattr(exc, "message", "") or "")
    return found.group(0) if found else "Bad Request"


async def abort(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    await query.answer()
    await _forget(state)
    await query.message.edit_text(tr(lang, "bc_aborted"))


async def card_action(query: CallbackQuery, callback_data: BcCb, lang: str,
                      broadcasts: BroadcastService) -> None:
    """Send / Pause / Resume / Cancel on a broadcast's card: a compare-and-set each, so a double
    tap or a replayed update does it once; the card is then drawn from the database."""
    bid, action = callback_data.broadcast_id, callback_data.action
    if action == BcAction.SEND:
        changed = await broadcasts.start(bid, card_message_id=query.message.message_id)
    elif action == BcAction.PAUSE:
        changed = await broadcasts.pause(bid)
    elif action == BcAction.RESUME:
        changed = await broadcasts.resume(bid)
    else:
        changed = await broadcasts.cancel(bid)
    b = await broadcasts.get(bid)
    if b is None:
        await query.answer(tr(lang, "bc_gone"), show_alert=True)
        return
    if changed:
        await query.answer()
    else:
        await query.answer(tr(lang, "bc_not_now", state=tr(lang, f"bc_state_{b.state}")),
                           show_alert=True)
    text, markup = _TEXTS.card(b, await broadcasts.counts(bid))
    try:
        await query.message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:  # "not modified": the worker drew the same card
        log.debug("broadcast card not edited: %s", type(exc).__name__)


def router() -> Router:
    r = Router(name="broadcast")
    r.message.filter(IsAdmin())
    r.callback_query.filter(IsAdmin())
    r.message.register(start_compose, Command("broadcast"))
    # Commands pass through (a /start mid-compose still works; the step waits).
    r.message.register(got_message, Compose.message, Magic(~F.text.startswith("/")))
    r.message.register(got_button, Compose.button, Magic(F.text))
    r.message.register(got_number, Compose.number, Magic(F.text))
    r.callback_query.register(skip_button, BcCb.filter(F.action == BcAction.SKIP))
    r.callback_query.register(pick_segment, BcCb.filter(F.action == BcAction.SEGMENT))
    r.callback_query.register(abort, BcCb.filter(F.action == BcAction.ABORT))
    r.callback_query.register(card_action, BcCb.filter(F.action.in_(
        {BcAction.SEND, BcAction.PAUSE, BcAction.RESUME, BcAction.CANCEL})))
    return r
