"""Follow-up buttons under a delivered image (bot/services/followups.py), and the card's
"Variants" row. Edit this opens the edit model's draft with the result as its only source;
Upscale, Remove background and Redo with a better model start at once, charged once per
(result, action) however often they are tapped.
A button of another user's result, of a result no longer stored, or of a follow-up no longer on
sale is stale: "this menu has expired" (handlers/errors.py)."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot.services.accounts import AccountService
from bot.services.followups import FollowAction, FollowupService, StaleFollowupError
from bot.services.generation import PriceChangedError, SourceImageError
from handlers import draft as drafts
from handlers import keyboards, screens
from handlers.callbacks import FollowCb, VariantsCb
from handlers.errors import StaleMenu
from handlers.failures import catalog_text
from handlers.states import Draft
from handlers.texts import count, tr
from kie_client.catalog import Catalog, CatalogError
from storage.errors import InFlightLimitError, InsufficientBalanceError

log = logging.getLogger(__name__)


async def _offer(query: CallbackQuery, callback_data: FollowCb, followups: FollowupService):
    try:
        return await followups.offer(user_id=query.from_user.id,
                                     generation_id=callback_data.generation_id,
                                     action=callback_data.action)
    except StaleFollowupError:
        raise StaleMenu() from None


async def edit_this(query: CallbackQuery, callback_data: FollowCb, state: FSMContext, lang: str,
                    catalog: Catalog, followups: FollowupService) -> None:
    """A draft of the edit model whose only source is this result; the user types the change
    and the card's Generate charges as any card does (once per card)."""
    g, offer = await _offer(query, callback_data, followups)
    await query.answer()
    await drafts.drop(state)
    draft = await drafts.new_draft(state, model=offer.model_key, opts=dict(offer.options), src=g.id)
    await state.set_state(Draft.prompt)
    ask, kb = screens.ask_prompt(lang, catalog, draft)
    text = tr(lang, "fu_edit_ask", id=g.id, name=offer.name) + "\n\n" + ask
    sent = await query.bot.send_message(query.from_user.id, text, reply_markup=kb)
    draft["screen"] = sent.message_id
    await drafts.save(state, draft)


async def one_tap(query: CallbackQuery, callback_data: FollowCb, lang: str, bot: Bot,
                  catalog: Catalog, followups: FollowupService) -> None:
    """Charge once for (this result, this action) and start; a repeat finds the first row."""
    g, offer = await _offer(query, callback_data, followups)
    chat_id = query.from_user.id
    # The status card first, so the generation can name it from the start (the deliverer
    # turns it into its final state); a repeated tap deletes its own card again.
    card = await bot.send_message(chat_id, tr(lang, "fu_starting", name=offer.name, id=g.id,
                                              price=offer.price))
    try:
        started = await followups.run(g=g, offer=offer, chat_id=chat_id,
                                      progress_message_id=card.message_id)
    except InsufficientBalanceError as exc:
        await query.answer()
        await _edit(bot, chat_id, card.message_id,
                    tr(lang, "fu_short", cost=exc.cost, balance=exc.balance),
                    keyboards.balance_kb(lang))
        return
    except InFlightLimitError as exc:
        await query.answer(tr(lang, "inflight_limit", generations=count(lang, exc.limit, "generation")),
                           show_alert=True)
        await _delete(bot, chat_id, card.message_id)
        return
    except SourceImageError:
        await query.answer()
        await _edit(bot, chat_id, card.message_id, tr(lang, "fu_source_gone"))
        return
    except (PriceChangedError, CatalogError) as exc:
        # The model went off sale or its price moved between the check and the charge.
        await query.answer()
        reason = (catalog_text(lang, exc, catalog.get(offer.model_key))
                  if isinstance(exc, CatalogError) else tr(lang, "price_changed", old=exc.shown,
                                                              new=exc.price))
        await _edit(bot, chat_id, card.message_id, tr(lang, "err_catalog", reason=reason))
        return
    if not started.created:
        await query.answer(tr(lang, "already_started"))
        await _delete(bot, chat_id, card.message_id)
        return
    # The card is the generation's status message from here on: the progress tracker edits it
    # and the deliverer gives it its final state. Not edited here: an edit after a fast
    # delivery would put "waiting in line" back on a finished card.
    await query.answer()


async def _edit(bot: Bot, chat_id: int, message_id: int, text: str, markup=None) -> None:
    try:
        await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                    reply_markup=markup)
    except TelegramBadRequest:
        pass  # not modified, or the progress tracker got there first


async def _delete(bot: Bot, chat_id: int, message_id: int) -> None:
    try:
        await bot.delete_message(chat_id, message_id)
    except TelegramBadRequest:
        log.info("duplicate follow-up card not deleted")


async def variants(query: CallbackQuery, callback_data: VariantsCb, state: FSMContext, lang: str,
                   catalog: Catalog, accounts: AccountService) -> None:
    """The card's "Variants: 1 2 3 4": the card again with the price × N on Generate."""
    draft = await drafts.current(state, callback_data.draft)
    if not keyboards.offers_variants(catalog.get(draft["model"])):
        raise StaleMenu()
    draft["variants"] = callback_data.n
    await query.answer()
    balance = await accounts.balance(query.from_user.id)
    await screens.show(query, *screens.card(lang, catalog, draft, balance))
    await drafts.save(state, draft)


def router() -> Router:
    r = Router(name="followups")
    r.callback_query.register(variants, VariantsCb.filter())
    r.callback_query.register(edit_this, FollowCb.filter(F.action == FollowAction.EDIT))
    r.callback_query.register(one_tap, FollowCb.filter(F.action != FollowAction.EDIT))
    return r
