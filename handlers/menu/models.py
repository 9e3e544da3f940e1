"""Model picker grouped by job (create an image, edit a photo, …); picking a model starts a draft
on its option screen and becomes the job's remembered model (FSM data "last_by_job")."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot.services.generation import GenerationService
from handlers import draft as drafts
from handlers import screens
from handlers.callbacks import JOB_ACTIONS, JOB_OF_CODE, FlowAction, FlowCb, JobPickCb, MenuCb, PickCb
from handlers.errors import StaleMenu
from handlers.states import Draft
from handlers.texts import tr
from kie_client.catalog import Catalog, CatalogError, Kind
from storage.models import GenerationStatus


async def open_picker(query: CallbackQuery, callback_data: MenuCb, state: FSMContext, lang: str,
                      catalog: Catalog, generations: GenerationService) -> None:
    await query.answer()
    await drafts.drop(state)  # a fresh start: nothing of an abandoned draft carries over
    job = JOB_ACTIONS[callback_data.action]
    free = await screens.free_model_for(generations, query.from_user.id)
    await screens.show(query, *screens.picker(lang, catalog, job, free=free,
                                              last=await screens.last_model(state, job)))


async def change_model(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                       catalog: Catalog, generations: GenerationService) -> None:
    draft = await drafts.current(state, callback_data.draft)
    await query.answer()
    spec = catalog.get(draft["model"])
    job = screens.draft_job(spec, draft)
    free = await screens.free_model_for(generations, query.from_user.id)
    await screens.show(query, *screens.picker(lang, catalog, job, src=draft.get("src") or 0,
                                              last=await screens.last_model(state, job), free=free))


async def pick(query: CallbackQuery, callback_data: PickCb | JobPickCb, state: FSMContext, lang: str,
               catalog: Catalog, generations: GenerationService) -> None:
    """A new draft for the picked model with its default options, keeping what still fits."""
    try:
        spec = catalog.get(callback_data.model)
    except CatalogError as exc:  # an unknown key is a stale or forged button
        raise StaleMenu() from exc
    if not catalog.sellable(spec.key):
        await query.answer(tr(lang, "model_off", name=spec.name), show_alert=True)
        return
    src = callback_data.source_id
    if src:
        source = await generations.get(user_id=query.from_user.id, generation_id=src)
        if source is None or source.kind != Kind.IMAGE \
                or source.status != GenerationStatus.succeeded or spec.image_input is None:
            raise StaleMenu()
    await query.answer()
    # Keep what the user already typed when they only switch models. Animating a result
    # (src given) takes that result as the only source: an older draft's photo or prompt
    # must not ride along, or the user would pay to animate a different picture.
    old = (await state.get_data()).get("draft") or {}
    if src:
        prompt = old.get("prompt") if old.get("src") == src else None
        photo = None
    else:
        prompt = old.get("prompt")
        photo = old.get("photo") if spec.image_input is not None else None
        src = (old.get("src") if spec.image_input is not None and not photo else 0) or 0
    draft = await drafts.new_draft(state, model=spec.key, opts=catalog.defaults(spec.key),
                                   prompt=prompt, photo=photo, src=src)
    job = JOB_OF_CODE.get(getattr(callback_data, "job", ""), spec.section)
    draft["job"] = job.value
    # Shown on the card (the charge itself is decided by the database when Generate is tapped).
    draft["free"] = await screens.free_model_for(generations, query.from_user.id) == spec.key
    remembered = (await state.get_data()).get("last_by_job") or {}
    await state.update_data(last_by_job={**remembered, job.value: spec.key})
    await state.set_state(Draft.options)
    draft["screen"] = await screens.show(query, *screens.options(lang, catalog, draft))
    await drafts.save(state, draft)


def router() -> Router:
    r = Router(name="models")
    r.callback_query.register(open_picker, MenuCb.filter(F.action.in_(set(JOB_ACTIONS))))
    r.callback_query.register(change_model, FlowCb.filter(F.action == FlowAction.MODEL))
    r.callback_query.register(pick, PickCb.filter())
    r.callback_query.register(pick, JobPickCb.filter())
    return r
