"""The Generate button and the buttons on a running or finished generation."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot.presenter import prompt_of
from bot.services.generation import SourceImage, SourceImageError
from handlers import draft as drafts
from handlers import screens
from handlers.callbacks import FlowCb, GenCb
from handlers.errors import StaleMenu
from handlers.states import Draft
from handlers.failures import catalog_text, source_text
from handlers.texts import count, tr
from kie_client.catalog import CatalogError
from storage.errors import InFlightLimitError, InsufficientBalanceError

log = logging.getLogger(__name__)


class _DownloadFailed(Exception):
    pass


async def _source_image(bot: Bot, photo: dict | None) -> SourceImage | None:
    if not photo:
        return None
    try:
        buf = await bot.download(photo["file_id"])
    except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as exc:
        log.warning("photo download failed: %s", type(exc).__name__)
        raise _DownloadFailed() from None
    if buf is None:
        raise _DownloadFailed()
    return SourceImage(data=buf.getvalue(), mime_type=photo["mime"], file_name=photo["name"])


def router() -> Router:
    r = Router(name="generate")

    @r.callback_query(FlowCb.filter(F.a == "go"))
    async def generate(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                       bot: Bot, catalog: Any, generations: Any, presenter: Any) -> None:
        draft = await drafts.current(state, callback_data.d)
        if not draft.get("prompt") or query.message is None:
            raise StaleMenu()
        chat_id = query.message.chat.id
        card_id = query.message.message_id
        try:
            # One source only: a chosen result (Animate) wins over any photo.
            src = draft.get("src") or None
            source = None if src else await _source_image(bot, draft.get("photo"))
            started = await generations.start(
                user_id=query.from_user.id, chat_id=chat_id, model_key=draft["model"],
                options=draft["opts"], prompt=draft["prompt"], request_key=f"{chat_id}:{card_id}",
                source_image=source, source_generation_id=src,
                progress_message_id=card_id,
            )
        except InsufficientBalanceError as exc:
            await query.answer(tr(lang, "short_balance", cost=exc.cost, balance=exc.balance,
                                  short=exc.cost - exc.balance)[:200])
            await screens.show(query, *screens.card(lang, catalog, draft, exc.balance))
            return
        except InFlightLimitError as exc:
            await query.answer(tr(lang, "inflight_limit", generations=count(lang, exc.limit, "generation")),
                               show_alert=True)
            return
        except (SourceImageError, _DownloadFailed) as exc:
            await query.answer()
            draft["photo"] = None
            await drafts.save(state, draft)
            await state.set_state(Draft.photo)
            error = (tr(lang, "err_download") if isinstance(exc, _DownloadFailed) else tr(
                lang, "err_source", reason=source_text(lang, exc.user_reason, catalog.get(draft["model"]))))
            text, kb = screens.ask_photo(lang, catalog, draft, error=error)
            await bot.send_message(chat_id, text, reply_markup=kb)
            return
        except CatalogError as exc:
            await query.answer()
            spec = catalog.get(draft["model"])
            await bot.send_message(chat_id, tr(lang, "err_catalog", reason=catalog_text(lang, exc, spec)))
            return
        if not started.created:
            await query.answer(tr(lang, "already_started"))
            return
        await query.answer()
        await state.set_state(None)
        await state.update_data(last_model=draft["model"], last_opts=draft["opts"])
        rendered = presenter.status(started.generation, language=lang, position=started.position,
                                    elapsed_s=0.0)
        await screens.show(query, rendered.text, rendered.reply_markup)

    @r.callback_query(GenCb.filter(F.a == "x"))
    async def cancel(query: CallbackQuery, callback_data: GenCb, lang: str, generations: Any) -> None:
        g = await generations.get(user_id=query.from_user.id, generation_id=callback_data.g)
        if g is None:
            raise StaleMenu()
        if await generations.cancel(user_id=query.from_user.id, generation_id=g.id):
            await query.answer()
            await screens.show(query, tr(lang, "cancel_done", cost=g.cost))
        else:
            await query.answer(tr(lang, "cancel_late"), show_alert=True)

    @r.callback_query(GenCb.filter(F.a == "doc"))
    async def original(query: CallbackQuery, callback_data: GenCb, lang: str, generations: Any) -> None:
        g = await generations.get(user_id=query.from_user.id, generation_id=callback_data.g)
        if g is None:
            raise StaleMenu()
        await query.answer()
        ok = await generations.resend(user_id=query.from_user.id, chat_id=query.from_user.id,
                                      generation_id=g.id, as_document=True)
        if not ok:
            await query.bot.send_message(query.from_user.id, tr(lang, "resend_failed"))

    @r.callback_query(GenCb.filter(F.a == "anim"))
    async def animate(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str,
                      catalog: Any, generations: Any) -> None:
        g = await generations.get(user_id=query.from_user.id, generation_id=callback_data.g)
        if g is None or g.kind != "image" or g.status != "succeeded":
            raise StaleMenu()
        await query.answer()
        await drafts.drop(state)  # a new flow whose only source is this result
        text, kb = screens.picker(lang, catalog, "video", src=g.id)
        await query.bot.send_message(query.from_user.id, text, reply_markup=kb)

    @r.callback_query(GenCb.filter(F.a == "again"))
    async def again(query: CallbackQuery, callback_data: GenCb, state: FSMContext, lang: str,
                    catalog: Any, accounts: Any, generations: Any) -> None:
        g = await generations.get(user_id=query.from_user.id, generation_id=callback_data.g)
        if g is None:
            raise StaleMenu()
        try:
            spec = catalog.get(g.model_key)
            opts = catalog.normalise_options(
                spec.key, {k: v for k, v in g.options.items() if spec.option(k) is not None})
        except CatalogError as exc:
            raise StaleMenu() from exc
        await query.answer()
        draft = await drafts.new_draft(state, model=spec.key, opts=opts, prompt=prompt_of(g) or None)
        chat = query.from_user.id
        if drafts.needs_photo(spec, draft):
            # The earlier photo is not kept as a reusable upload; ask for it again.
            await state.set_state(Draft.photo)
            text, kb = screens.ask_photo(lang, catalog, draft)
        elif not draft.get("prompt"):
            await state.set_state(Draft.prompt)
            text, kb = screens.ask_prompt(lang, catalog, draft)
        else:
            await state.set_state(Draft.confirm)
            text, kb = screens.card(lang, catalog, draft, await accounts.balance(chat))
        sent = await query.bot.send_message(chat, text, reply_markup=kb)
        draft["screen"] = sent.message_id
        await drafts.save(state, draft)

    return r
