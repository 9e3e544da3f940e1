"""The summary card's Generate button: charge once, start the generation, show its status."""

from __future__ import annotations

import logging

import aiohttp
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery

from bot.presenter import Presenter
from bot.services.accounts import AccountService
from bot.services.generation import (
    GenerationService,
    PriceChangedError,
    SourceAudio,
    SourceAudioError,
    SourceImage,
    SourceImageError,
)
from handlers import draft as drafts
from handlers import screens
from handlers.callbacks import FlowAction, FlowCb
from handlers.errors import StaleMenu
from handlers.failures import catalog_text, source_text
from handlers.states import Draft
from handlers.texts import count, tr
from kie_client.catalog import Catalog, CatalogError
from storage.errors import InFlightLimitError, InsufficientBalanceError

log = logging.getLogger(__name__)


class _DownloadFailed(Exception):
    """The user's photo could not be fetched from Telegram."""


async def _download(bot: Bot, record: dict) -> bytes:
    try:
        buf = await bot.download(record["file_id"])
    except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as exc:
        log.warning("input download failed: %s", type(exc).__name__)
        raise _DownloadFailed() from None
    if buf is None:
        raise _DownloadFailed()
    return buf.getvalue()


async def _source_images(bot: Bot, draft: dict) -> list[SourceImage]:
    """Every photo of the draft (an album's, in order), fetched from Telegram."""
    return [SourceImage(data=await _download(bot, p), mime_type=p["mime"], file_name=p["name"])
            for p in drafts.photos(draft)]


async def _source_audio(bot: Bot, record: dict | None) -> SourceAudio | None:
    if not record:
        return None
    return SourceAudio(data=await _download(bot, record), mime_type=record["mime"],
                       file_name=record["name"], seconds=record.get("seconds"))


async def generate(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                   bot: Bot, catalog: Catalog, generations: GenerationService,
                   presenter: Presenter, accounts: AccountService) -> None:
    """The request key is the card's message, so however often the button is tapped the user
    is charged once. The card then becomes the generation's status message."""
    draft = await drafts.current(state, callback_data.draft)
    wants_prompt = catalog.get(draft["model"]).prompt  # tools take none
    if (wants_prompt and not draft.get("prompt")) or query.message is None:
        raise StaleMenu()
    chat_id = query.message.chat.id
    card_id = query.message.message_id
    try:
        # One source only: a chosen result (Animate) wins over any photo.
        src = draft.get("src") or None
        sources = [] if src else await _source_images(bot, draft)
        started = await generations.start(
            user_id=query.from_user.id, chat_id=chat_id, model_key=draft["model"],
            options=draft["opts"], prompt=draft.get("prompt") or "",
            request_key=f"{chat_id}:{card_id}", source_images=sources, source_generation_id=src,
            source_audio=await _source_audio(bot, draft.get("audio")),
            progress_message_id=card_id, audio_seconds=screens.audio_seconds(draft),
            expected_cost=draft.get("price"),
            variants=screens.variants_of(catalog.get(draft["model"]), draft),
        )
    except InsufficientBalanceError as exc:
        await query.answer(tr(lang, "short_balance", cost=exc.cost, balance=exc.balance,
                              short=exc.cost - exc.balance)[:200])
        await screens.show(query, *screens.card(lang, catalog, draft, exc.balance))
        await drafts.save(state, draft)
        return
    except PriceChangedError as exc:
        # The button said one price and the catalog now says another: show the new one first.
        await query.answer(tr(lang, "price_changed", old=exc.shown, new=exc.price), show_alert=True)
        balance = await accounts.balance(query.from_user.id)
        await screens.show(query, *screens.card(lang, catalog, draft, balance))
        await drafts.save(state, draft)
        return
    except InFlightLimitError as exc:
        await query.answer(tr(lang, "inflight_limit", generations=count(lang, exc.limit, "generation")),
                           show_alert=True)
        return
    except SourceAudioError as exc:
        # The recording is unusable or missing: drop it and ask for another, with the reason.
        await query.answer()
        draft["audio"] = None
        await drafts.save(state, draft)
        await state.set_state(Draft.audio)
        log.info("recording refused: %s", exc.user_reason)
        text, kb = screens.ask_audio(lang, catalog, draft, error=tr(lang, "err_audio_source"))
        await bot.send_message(chat_id, text, reply_markup=kb)
        return
    except (SourceImageError, _DownloadFailed) as exc:
        # The photo is unusable: drop it and ask for another, with the reason.
        await query.answer()
        draft["photo"], draft["photos"], draft["group"] = None, None, None
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
    # A card that showed a price but charged nothing used today's free generation: say so.
    free = started.generation.cost == 0 and (draft.get("price") or 0) > 0
    await query.answer(tr(lang, "free_used") if free else None)
    await state.set_state(None)
    await state.update_data(last_model=draft["model"], last_opts=draft["opts"])
    rendered = presenter.status(started.generation, language=lang, position=started.position,
                                elapsed_s=0.0)
    await screens.show(query, rendered.text, rendered.reply_markup)


def router() -> Router:
    r = Router(name="generate")
    r.callback_query.register(generate, FlowCb.filter(F.action == FlowAction.GENERATE))
    return r
