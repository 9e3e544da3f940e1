"""Option screens: one message edited in place; price and summary follow every tap. Also the
draft's Next, Back and Cancel buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot.services.accounts import AccountService
from handlers import draft as drafts
from handlers import screens
from handlers.callbacks import OPEN_VALUES, FlowAction, FlowCb, OptCb
from handlers.errors import StaleMenu
from handlers.states import Draft
from handlers.texts import tr
from kie_client.catalog import Catalog


async def advance(query: CallbackQuery, state: FSMContext, draft: dict, lang: str,
                  catalog: Catalog, accounts: AccountService) -> None:
    """After the options: the photo if the model needs one, then the prompt, then the card."""
    spec = catalog.get(draft["model"])
    if drafts.needs_photo(spec, draft):
        await state.set_state(Draft.photo)
        screen = screens.ask_photo(lang, catalog, draft)
    elif spec.prompt and not draft.get("prompt"):
        await state.set_state(Draft.prompt)
        screen = screens.ask_prompt(lang, catalog, draft)
    else:
        await state.set_state(Draft.confirm)
        screen = screens.card(lang, catalog, draft, await accounts.balance(query.from_user.id))
    draft["screen"] = await screens.show(query, *screen)
    await drafts.save(state, draft)


async def option(query: CallbackQuery, callback_data: OptCb, state: FSMContext, lang: str,
                 catalog: Catalog) -> None:
    """Opens an option's values, or sets one (a toggle's button sets the other value directly).
    Indices outside the model's options are a stale or forged button."""
    draft = await drafts.current(state, callback_data.draft)
    spec = catalog.get(draft["model"])
    if not 0 <= callback_data.option < len(spec.options):
        raise StaleMenu()
    opt = spec.options[callback_data.option]
    if callback_data.value == OPEN_VALUES:
        await query.answer()
        await screens.show(query, *screens.option_values(lang, catalog, draft, callback_data.option))
        return
    if not 0 <= callback_data.value < len(opt.offered):
        raise StaleMenu()
    draft["opts"] = {**draft["opts"], opt.name: opt.offered[callback_data.value]}
    await drafts.save(state, draft)
    await state.set_state(Draft.options)
    await query.answer()
    await screens.show(query, *screens.options(lang, catalog, draft))


async def back_to_options(query: CallbackQuery, callback_data: FlowCb, state: FSMContext,
                          lang: str, catalog: Catalog) -> None:
    draft = await drafts.current(state, callback_data.draft)
    await query.answer()
    await state.set_state(Draft.options)
    draft["screen"] = await screens.show(query, *screens.options(lang, catalog, draft))
    await drafts.save(state, draft)


async def next_step(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                    catalog: Catalog, accounts: AccountService) -> None:
    draft = await drafts.current(state, callback_data.draft)
    await query.answer()
    await advance(query, state, draft, lang, catalog, accounts)


async def back(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
               catalog: Catalog) -> None:
    """One step back: prompt → photo (when the model takes one) → options → model picker."""
    draft = await drafts.current(state, callback_data.draft)
    await query.answer()
    spec = catalog.get(draft["model"])
    current = await state.get_state()
    if current == Draft.prompt.state and spec.image_input is not None and not draft.get("src"):
        await state.set_state(Draft.photo)
        screen = screens.ask_photo(lang, catalog, draft)
    elif current in (Draft.photo.state, Draft.prompt.state, Draft.confirm.state):
        await state.set_state(Draft.options)
        screen = screens.options(lang, catalog, draft)
    else:
        job = screens.draft_job(spec, draft)
        screen = screens.picker(lang, catalog, job, src=draft.get("src") or 0,
                                last=await screens.last_model(state, job))
    draft["screen"] = await screens.show(query, *screen)
    await drafts.save(state, draft)


async def cancel(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                 accounts: AccountService) -> None:
    await drafts.current(state, callback_data.draft)  # only the current card's Cancel
    await drafts.drop(state)
    await query.answer(tr(lang, "cancelled"))
    text, kb = screens.main_menu(lang, await accounts.balance(query.from_user.id))
    await screens.show(query, tr(lang, "cancelled") + "\n\n" + text, kb)


def router() -> Router:
    r = Router(name="options")
    r.callback_query.register(option, OptCb.filter())
    r.callback_query.register(back_to_options, FlowCb.filter(F.action == FlowAction.OPTIONS))
    r.callback_query.register(next_step, FlowCb.filter(F.action == FlowAction.NEXT))
    r.callback_query.register(back, FlowCb.filter(F.action == FlowAction.BACK))
    r.callback_query.register(cancel, FlowCb.filter(F.action == FlowAction.CANCEL))
    return r
