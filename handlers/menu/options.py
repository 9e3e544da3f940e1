"""Option screens: one message edited in place; price and summary follow every tap."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from handlers import draft as drafts
from handlers import screens
from handlers.callbacks import FlowCb, OptCb
from handlers.errors import StaleMenu
from handlers.states import Draft
from handlers.texts import tr


async def advance(query: CallbackQuery, state: FSMContext, draft: dict, lang: str, catalog: Any,
                  accounts: Any) -> None:
    """After the options: the photo if the model needs one, then the prompt, then the card."""
    spec = catalog.get(draft["model"])
    if drafts.needs_photo(spec, draft):
        await state.set_state(Draft.photo)
        screen = screens.ask_photo(lang, catalog, draft)
    elif not draft.get("prompt"):
        await state.set_state(Draft.prompt)
        screen = screens.ask_prompt(lang, catalog, draft)
    else:
        await state.set_state(Draft.confirm)
        screen = screens.card(lang, catalog, draft, await accounts.balance(query.from_user.id))
    draft["screen"] = await screens.show(query, *screen)
    await drafts.save(state, draft)


def router() -> Router:
    r = Router(name="options")

    @r.callback_query(OptCb.filter())
    async def option(query: CallbackQuery, callback_data: OptCb, state: FSMContext, lang: str,
                     catalog: Any) -> None:
        draft = await drafts.current(state, callback_data.d)
        spec = catalog.get(draft["model"])
        if not 0 <= callback_data.o < len(spec.options):
            raise StaleMenu()
        opt = spec.options[callback_data.o]
        if callback_data.v == -1:
            await query.answer()
            await screens.show(query, *screens.option_values(lang, catalog, draft, callback_data.o))
            return
        if not 0 <= callback_data.v < len(opt.values):
            raise StaleMenu()
        draft["opts"] = {**draft["opts"], opt.name: opt.values[callback_data.v]}
        await drafts.save(state, draft)
        await state.set_state(Draft.options)
        await query.answer()
        await screens.show(query, *screens.options(lang, catalog, draft))

    @r.callback_query(FlowCb.filter(F.a == "opts"))
    async def back_to_options(query: CallbackQuery, callback_data: FlowCb, state: FSMContext,
                              lang: str, catalog: Any) -> None:
        draft = await drafts.current(state, callback_data.d)
        await query.answer()
        await state.set_state(Draft.options)
        draft["screen"] = await screens.show(query, *screens.options(lang, catalog, draft))
        await drafts.save(state, draft)

    @r.callback_query(FlowCb.filter(F.a == "next"))
    async def next_step(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                        catalog: Any, accounts: Any) -> None:
        draft = await drafts.current(state, callback_data.d)
        await query.answer()
        await advance(query, state, draft, lang, catalog, accounts)

    @r.callback_query(FlowCb.filter(F.a == "back"))
    async def back(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                   catalog: Any) -> None:
        draft = await drafts.current(state, callback_data.d)
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
            screen = screens.picker(lang, catalog, screens.kind_of(spec), src=draft.get("src") or 0)
        draft["screen"] = await screens.show(query, *screen)
        await drafts.save(state, draft)

    @r.callback_query(FlowCb.filter(F.a == "cancel"))
    async def cancel(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                     accounts: Any) -> None:
        await drafts.current(state, callback_data.d)
        await drafts.drop(state)
        await query.answer(tr(lang, "cancelled"))
        text, kb = screens.main_menu(lang, await accounts.balance(query.from_user.id))
        await screens.show(query, tr(lang, "cancelled") + "\n\n" + text, kb)

    return r
