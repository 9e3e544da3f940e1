"""Buttons on a running or finished generation: Cancel (while queued), Again, Original file and
Animate. Each looks the generation up by id for this user, so another user's id is stale."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot.services.accounts import AccountService
from bot.services.followups import FollowupService
from bot.services.generation import GenerationService
from bot.services.prompt_helper import PromptHelper
from handlers import draft as drafts
from handlers import prompt_helper as helper
from handlers import screens
from handlers.callbacks import GenAction, GenCb
from handlers.errors import StaleMenu
from handlers.states import Draft
from handlers.texts import tr
from kie_client.catalog import Catalog, CatalogError, Job, Kind
from storage.models import Generation, GenerationStatus


async def _own_generation(query: CallbackQuery, callback_data: GenCb,
                          generations: GenerationService) -> Generation:
    g = await generations.get(user_id=query.from_user.id, generation_id=callback_data.generation_id)
    if g is None:
        raise StaleMenu()
    return g


async def cancel(query: CallbackQuery, callback_data: GenCb, lang: str,
                 generations: GenerationService, followups: FollowupService) -> None:
    """Refunded when still waiting in line; once sent to KIE it is too late (an alert says so).
    A variant order's card cancels the order's rows still in line too."""
    g = await _own_generation(query, callback_data, generations)
    if await generations.cancel(user_id=query.from_user.id, generation_id=g.id):
        rest = await followups.cancel_rest_of_order(g)
        await query.answer()
        await screens.show(query, tr(lang, "cancel_done", cost=g.cost + rest))
    else:
        await query.answer(tr(lang, "cancel_late"), show_alert=True)


async def original(query: CallbackQuery, callback_data: GenCb, lang: str,
                   generations: GenerationService) -> None:
    """The stored file again, as a document (uncompressed)."""
    g = await _own_generation(query, callback_data, generations)
    await query.answer()
    ok = await generations.resend(user_id=query.from_user.id, chat_id=query.from_user.id,
                                  generation_id=g.id, as_document=True)
    if not ok:
        await query.bot.send_message(query.from_user.id, tr(lang, "resend_failed"))


async def animate(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str,
                  catalog: Catalog, generations: GenerationService) -> None:
    """An image result becomes the source of a new image-to-video draft."""
    g = await _own_generation(query, callback_data, generations)
    if g.kind != Kind.IMAGE or g.status != GenerationStatus.succeeded:
        raise StaleMenu()
    await query.answer()
    await drafts.drop(state)  # a new flow whose only source is this result
    text, kb = screens.picker(lang, catalog, Job.ANIMATE_PHOTO, src=g.id)
    await query.bot.send_message(query.from_user.id, text, reply_markup=kb)


async def again(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str,
                catalog: Catalog, accounts: AccountService, generations: GenerationService,
                prompt_helper: PromptHelper | None = None) -> None:
    """A new draft with the same model, options and prompt, at the first step still missing
    (its card offers ✨ Improve like any other)."""
    g = await _own_generation(query, callback_data, generations)
    try:
        spec = catalog.get(g.model_key)
        opts = catalog.normalise_options(
            spec.key, {k: v for k, v in g.options.items() if spec.option(k) is not None})
    except CatalogError as exc:
        raise StaleMenu() from exc
    await query.answer()
    draft = await drafts.new_draft(state, model=spec.key, opts=opts, prompt=g.prompt or None)
    helper.offer(draft, prompt_helper)
    chat = query.from_user.id
    if drafts.needs_photo(spec, draft):
        # The earlier photo is not kept as a reusable upload; ask for it again.
        await state.set_state(Draft.photo)
        text, kb = screens.ask_photo(lang, catalog, draft)
    elif drafts.needs_audio(spec, draft):
        await state.set_state(Draft.audio)  # nor is the recording
        text, kb = screens.ask_audio(lang, catalog, draft)
    elif spec.prompt and not draft.get("prompt"):
        await state.set_state(Draft.prompt)
        text, kb = screens.ask_prompt(lang, catalog, draft)
    else:
        await state.set_state(Draft.confirm)
        text, kb = screens.card(lang, catalog, draft, await accounts.balance(chat))
    sent = await query.bot.send_message(chat, text, reply_markup=kb)
    draft["screen"] = sent.message_id
    await drafts.save(state, draft)


def router() -> Router:
    r = Router(name="results")
    r.callback_query.register(cancel, GenCb.filter(F.action == GenAction.CANCEL))
    r.callback_query.register(original, GenCb.filter(F.action == GenAction.ORIGINAL))
    r.callback_query.register(animate, GenCb.filter(F.action == GenAction.ANIMATE))
    r.callback_query.register(again, GenCb.filter(F.action == GenAction.AGAIN))
    return r
