"""The prompt helper on the summary card (issue 14 item 2).

"✨ Improve" sends the draft's prompt to the chat model (bot/services/prompt_helper.py) and shows
the improved English text with Use it / Edit / Keep mine. A model with its own prompt switch
(Veo's enableTranslation…) shows that switch on the card instead, toggled in place.

A press is named by its key — user, draft, card message and the prompt it improves — so a tap
repeated on the same card and prompt shows the answer already in the draft (kept there as
"assist") instead of asking (or charging) again; the ledger's key guards the money on its own.
Whatever goes wrong, the card comes back with the original prompt and a polite line: Generate
always works.
"""

from __future__ import annotations

import hashlib

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot.services.accounts import AccountService
from bot.services.prompt_helper import (
    Failed,
    Improved,
    Limited,
    PromptHelper,
    Short,
    native_switch,
)
from handlers import draft as drafts
from handlers import keyboards, screens
from handlers.callbacks import AssistAction, AssistCb
from handlers.states import Draft
from handlers.texts import tr
from kie_client.catalog import Catalog, InvalidPromptError


def offer(draft: dict, helper: PromptHelper | None) -> None:
    """Note in the draft whether its card offers "✨ Improve", at what price (None: no helper)."""
    draft["helper"] = helper.price if helper is not None else None


def press_key(user_id: int, draft: dict, message_id: int, prompt: str) -> str:
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    return f"{user_id}:{draft['d']}:{message_id}:{digest}"


async def _card(query: CallbackQuery, state: FSMContext, draft: dict, lang: str,
                catalog: Catalog, accounts: AccountService, note: str | None = None) -> None:
    await state.set_state(Draft.confirm)
    text, kb = screens.card(lang, catalog, draft, await accounts.balance(query.from_user.id))
    draft["screen"] = await screens.show(query, f"{note}\n\n{text}" if note else text, kb)
    await drafts.save(state, draft)


def _result(lang: str, draft: dict, charged: int = 0) -> tuple[str, object]:
    assist = draft["assist"]
    text = tr(lang, "assist_result", improved=assist["text"], original=assist["original"])
    if charged:
        text += "\n\n" + tr(lang, "assist_paid", price=charged)
    return text, keyboards.assist_kb(lang, draft["d"])


async def improve(query: CallbackQuery, callback_data: AssistCb, state: FSMContext, lang: str,
                  catalog: Catalog, accounts: AccountService,
                  prompt_helper: PromptHelper | None = None) -> None:
    draft = await drafts.current(state, callback_data.draft)
    spec = catalog.get(draft["model"])
    prompt = draft.get("prompt") or ""
    if prompt_helper is None or not prompt or not prompt_helper.offers_improve(spec):
        await query.answer(tr(lang, "assist_unavailable"))
        return
    card_id = query.message.message_id if query.message is not None else 0
    key = press_key(query.from_user.id, draft, card_id, prompt)
    assist = draft.get("assist")
    if isinstance(assist, dict) and assist.get("key") == key:  # a repeated tap: same answer
        await query.answer()
        await screens.show(query, *_result(lang, draft))
        return
    await query.answer(tr(lang, "assist_working"))
    outcome = await prompt_helper.improve(user_id=query.from_user.id, prompt=prompt,
                                          kind=spec.kind, key=key, max_length=spec.prompt_max)
    if isinstance(outcome, Improved):
        draft["assist"] = {"key": key, "text": outcome.text, "original": prompt}
        await drafts.save(state, draft)
        await screens.show(query, *_result(lang, draft, outcome.charged))
        return
    if isinstance(outcome, Failed):
        note = tr(lang, "assist_failed")
        if outcome.refunded:
            note += " " + tr(lang, "assist_refunded", amount=outcome.refunded)
    elif isinstance(outcome, Limited):
        note = tr(lang, "assist_limited", n=outcome.per_minute)
    elif isinstance(outcome, Short):
        note = tr(lang, "assist_short", price=outcome.price, balance=outcome.balance)
    await _card(query, state, draft, lang, catalog, accounts, note)


async def accept(query: CallbackQuery, callback_data: AssistCb, state: FSMContext, lang: str,
                 catalog: Catalog, accounts: AccountService) -> None:
    draft = await drafts.current(state, callback_data.draft)
    await query.answer()
    assist = draft.get("assist")
    note = tr(lang, "assist_kept")
    if isinstance(assist, dict) and assist.get("original") == draft.get("prompt"):
        try:
            draft["prompt"] = catalog.validate_prompt(draft["model"], assist["text"])
            note = tr(lang, "assist_accepted")
        except InvalidPromptError:
            note = tr(lang, "assist_invalid")
    await _card(query, state, draft, lang, catalog, accounts, note)


async def edit(query: CallbackQuery, callback_data: AssistCb, state: FSMContext, lang: str,
               catalog: Catalog) -> None:
    """Ask for the user's own version; the typed text goes the usual way (handlers/menu/prompt.py)."""
    draft = await drafts.current(state, callback_data.draft)
    await query.answer()
    spec = catalog.get(draft["model"])
    assist = draft.get("assist") if isinstance(draft.get("assist"), dict) else {}
    improved = assist.get("text") or draft.get("prompt") or ""
    await state.set_state(Draft.prompt)
    await screens.show(query, tr(lang, "assist_edit", min=spec.prompt_min, max=spec.prompt_max,
                                 improved=improved), keyboards.step_kb(lang, draft["d"]))


async def keep(query: CallbackQuery, callback_data: AssistCb, state: FSMContext, lang: str,
               catalog: Catalog, accounts: AccountService) -> None:
    draft = await drafts.current(state, callback_data.draft)
    await query.answer()
    await _card(query, state, draft, lang, catalog, accounts, tr(lang, "assist_kept"))


async def switch(query: CallbackQuery, callback_data: AssistCb, state: FSMContext, lang: str,
                 catalog: Catalog, accounts: AccountService) -> None:
    """Toggle the model's own prompt switch on the card."""
    draft = await drafts.current(state, callback_data.draft)
    option = native_switch(catalog.get(draft["model"]))
    await query.answer()
    if option is not None:
        draft["opts"][option.name] = not bool(draft["opts"].get(option.name, option.default))
    await _card(query, state, draft, lang, catalog, accounts)


def router() -> Router:
    r = Router(name="prompt_helper")
    r.callback_query.register(improve, AssistCb.filter(F.action == AssistAction.IMPROVE))
    r.callback_query.register(accept, AssistCb.filter(F.action == AssistAction.ACCEPT))
    r.callback_query.register(edit, AssistCb.filter(F.action == AssistAction.EDIT))
    r.callback_query.register(keep, AssistCb.filter(F.action == AssistAction.KEEP))
    r.callback_query.register(switch, AssistCb.filter(F.action == AssistAction.SWITCH))
    return r
