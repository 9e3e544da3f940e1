"""Photo templates: a gallery of one-tap edits ("✨ Templates" on the main menu, /templates).

One card per template (its example picture, name, description, price, ◀ ▶, "Use · N⭐"). Use
asks for the photo (or two, one at a time, for templates that combine two people); the last
photo starts the order through GenerationService with the template's model, options, prompt
and price. The order's request key is that photo message, so a replayed or doubled update
charges once, and tapping Use again and again only asks for the photo again. The Use button
carries the price it showed: a different price now is refused before any charge.
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.presenter import Presenter
from bot.services.accounts import AccountService
from bot.services.generation import GenerationService, PriceChangedError, SourceImage, SourceImageError
from bot.services.templates import TemplateService
from bot.templates import Template
from handlers import keyboards, screens
from handlers.callbacks import TplAction, TplCb
from handlers.failures import catalog_text, source_text
from handlers.filters import Magic
from handlers.menu.prompt import photo_of
from handlers.texts import count, tr
from kie_client.catalog import Catalog, CatalogError
from storage.errors import InFlightLimitError, InsufficientBalanceError

log = logging.getLogger(__name__)
PENDING = "tpl"  # FSM data: {"key", "price", "photos": [photo records]} while waiting


class TemplateFlow(StatesGroup):
    photo = State()  # waiting for the template's photo(s)


def _question(lang: str, t: Template, price: int, have: int) -> str:
    if t.photos == 1:
        return tr(lang, "tpl_ask_1", name=t.title(lang), price=price)
    if have == 0:
        return tr(lang, "tpl_ask_first", name=t.title(lang), price=price)
    return tr(lang, "tpl_ask_second", name=t.title(lang))


async def send_card(bot: Bot, chat_id: int, lang: str, templates: TemplateService,
                    index: int = 0) -> None:
    """The gallery's card at `index` (wrapping), as a photo message with its buttons. The example
    is uploaded once per process; later cards reuse Telegram's file_id."""
    visible = templates.visible()
    if not visible:
        await bot.send_message(chat_id, tr(lang, "tpl_empty"), reply_markup=keyboards.menu_only_kb(lang))
        return
    index %= len(visible)
    t = visible[index]
    price = templates.price(t)
    caption = tr(lang, "tpl_card", name=t.title(lang), description=t.blurb(lang),
                 photos=tr(lang, f"tpl_photos_{t.photos}"), price=price, index=index + 1,
                 total=len(visible))
    kb = keyboards.template_card_kb(lang, index, len(visible), t.key, price)
    name, data = templates.example(t)
    if data is None:
        try:
            await bot.send_photo(chat_id, templates.file_ids[name], caption=caption, reply_markup=kb)
            return
        except TelegramBadRequest:  # Telegram forgot the file: upload it again
            templates.file_ids.pop(name, None)
            name, data = templates.example(t)
    sent = await bot.send_photo(chat_id, BufferedInputFile(data, filename=Path(name).name),
                                caption=caption, reply_markup=kb)
    if sent.photo:
        templates.file_ids[name] = sent.photo[-1].file_id


def _chat(query: CallbackQuery) -> int:
    """The chat of a button (a private chat: the user's id when the message is too old to see)."""
    return query.message.chat.id if query.message else query.from_user.id


async def templates_cmd(message: Message, lang: str, bot: Bot, templates: TemplateService) -> None:
    await templates.refresh()
    await send_card(bot, message.chat.id, lang, templates)


async def open_btn(query: CallbackQuery, lang: str, bot: Bot, templates: TemplateService) -> None:
    await query.answer()
    await templates.refresh()
    await send_card(bot, _chat(query), lang, templates)


async def page_btn(query: CallbackQuery, callback_data: TplCb, lang: str, bot: Bot,
                   templates: TemplateService) -> None:
    """◀ ▶: the next card replaces this one (a photo message's picture cannot be edited into
    another template's here, so the old card goes)."""
    await query.answer()
    await templates.refresh()
    await send_card(bot, _chat(query), lang, templates, callback_data.index)
    if query.message is None:
        return
    try:
        await query.message.delete()
    except TelegramAPIError:  # too old to delete: two cards stay, harmless
        pass


async def use_btn(query: CallbackQuery, callback_data: TplCb, state: FSMContext, lang: str,
                  bot: Bot, templates: TemplateService) -> None:
    await templates.refresh()
    chat_id = _chat(query)
    t = templates.on_sale(callback_data.key)
    if t is None:  # switched off (or its model) since the card was sent
        await query.answer(tr(lang, "tpl_unavailable"), show_alert=True)
        await send_card(bot, chat_id, lang, templates)
        return
    price = templates.price(t)
    if price != callback_data.price:
        await query.answer(tr(lang, "tpl_price_changed", name=t.title(lang), old=callback_data.price,
                              new=price), show_alert=True)
        await send_card(bot, chat_id, lang, templates, _index_of(templates, t.key))
        return
    await query.answer()
    await state.set_state(TemplateFlow.photo)
    await state.update_data({PENDING: {"key": t.key, "price": price, "photos": []}})
    await bot.send_message(chat_id, _question(lang, t, price, 0),
                           reply_markup=keyboards.template_wait_kb(lang))


def _index_of(templates: TemplateService, key: str) -> int:
    return next((i for i, t in enumerate(templates.visible()) if t.key == key), 0)


async def cancel_btn(query: CallbackQuery, state: FSMContext, lang: str, bot: Bot,
                     accounts: AccountService) -> None:
    await query.answer()
    if await state.get_state() == TemplateFlow.photo.state:
        await state.set_state(None)
        await state.update_data({PENDING: None})
    text, kb = screens.main_menu(lang, await accounts.balance(query.from_user.id))
    await bot.send_message(_chat(query), tr(lang, "cancelled") + "\n\n" + text, reply_markup=kb)
    if query.message is not None:
        try:
            await query.message.edit_reply_markup(reply_markup=None)  # the question is closed
        except TelegramAPIError:
            pass


async def _download(bot: Bot, record: dict) -> SourceImage | None:
    try:
        buf = await bot.download(record["file_id"])
    except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as exc:
        log.warning("template photo download failed: %s", type(exc).__name__)
        return None
    if buf is None:
        return None
    return SourceImage(data=buf.getvalue(), mime_type=record["mime"], file_name=record["name"])


async def _stop(state: FSMContext) -> None:
    await state.set_state(None)
    await state.update_data({PENDING: None})


async def photo_in(message: Message, state: FSMContext, lang: str, bot: Bot, catalog: Catalog,
                   templates: TemplateService, generations: GenerationService,
                   presenter: Presenter) -> None:
    """A photo while a template waits for one: the last one needed starts the order."""
    await templates.refresh()
    pending = (await state.get_data()).get(PENDING) or {}
    t = templates.on_sale(pending.get("key", ""))
    if t is None:
        await _stop(state)
        await message.answer(tr(lang, "tpl_unavailable"))
        await send_card(bot, message.chat.id, lang, templates)
        return
    price, photos = pending["price"], list(pending.get("photos") or [])
    spec = catalog.get(t.model)
    record, error = photo_of(message, spec, lang)
    if record is None:  # a sticker, a video, a file that is no picture: the reason, same question
        await message.answer(error + "\n\n" + _question(lang, t, price, len(photos)),
                             reply_markup=keyboards.template_wait_kb(lang))
        return
    photos.append(record)
    if len(photos) < t.photos:
        await state.update_data({PENDING: {**pending, "photos": photos}})
        await message.answer(_question(lang, t, price, len(photos)),
                             reply_markup=keyboards.template_wait_kb(lang))
        return
    if templates.price(t) != price:  # re-priced since Use: nothing downloaded, nothing charged
        await _stop(state)
        await message.answer(tr(lang, "tpl_price_changed", name=t.title(lang), old=price,
                                new=templates.price(t)))
        await send_card(bot, message.chat.id, lang, templates, _index_of(templates, t.key))
        return
    sources = [await _download(bot, p) for p in photos]
    if None in sources:
        await _retry_photo(message, state, lang, t, pending, photos, tr(lang, "err_download"))
        return
    status = await message.answer(tr(lang, "tpl_starting", name=t.title(lang)))
    chat_id = message.chat.id
    try:
        started = await generations.start(
            user_id=message.from_user.id, chat_id=chat_id, model_key=t.model, options=t.options(),
            prompt=t.render_prompt(), request_key=f"tpl:{chat_id}:{message.message_id}",
            source_images=sources, progress_message_id=status.message_id,
            expected_cost=price, price=templates.price(t), label=f"✨ {t.title(lang)}")
    except InsufficientBalanceError as exc:
        await state.update_data({PENDING: {**pending, "photos": []}})
        await status.edit_text(tr(lang, "tpl_short", name=t.title(lang), cost=exc.cost,
                                  balance=exc.balance), reply_markup=keyboards.balance_kb(lang))
        return
    except PriceChangedError as exc:
        await _stop(state)
        await status.edit_text(tr(lang, "tpl_price_changed", name=t.title(lang), old=exc.shown,
                                  new=exc.price))
        await send_card(bot, chat_id, lang, templates, _index_of(templates, t.key))
        return
    except InFlightLimitError as exc:
        await state.update_data({PENDING: {**pending, "photos": []}})
        await status.edit_text(tr(lang, "inflight_limit",
                                  generations=count(lang, exc.limit, "generation")))
        return
    except SourceImageError as exc:
        await status.delete()
        reason = tr(lang, "tpl_bad_photo", reason=source_text(lang, exc.user_reason, spec))
        await _retry_photo(message, state, lang, t, pending, photos, reason)
        return
    except CatalogError as exc:  # the model was switched off or refuses the template's input
        await _stop(state)
        await status.edit_text(tr(lang, "tpl_failed", name=t.title(lang),
                                  reason=catalog_text(lang, exc, spec)))
        return
    await _stop(state)
    if not started.created:
        await status.edit_text(tr(lang, "already_started"))
        return
    rendered = presenter.status(started.generation, language=lang, position=started.position,
                                elapsed_s=0.0)
    await status.edit_text(rendered.text, reply_markup=rendered.reply_markup)


async def _retry_photo(message: Message, state: FSMContext, lang: str, t: Template, pending: dict,
                       photos: list, reason: str) -> None:
    """The last photo is unusable: forget it and ask the same question with the reason."""
    photos = photos[:-1]
    await state.update_data({PENDING: {**pending, "photos": photos}})
    await message.answer(reason + "\n\n" + _question(lang, t, pending["price"], len(photos)),
                         reply_markup=keyboards.template_wait_kb(lang))


def router() -> Router:
    r = Router(name="templates")
    r.message.register(templates_cmd, Command("templates"))
    r.callback_query.register(open_btn, TplCb.filter(F.action == TplAction.OPEN))
    r.callback_query.register(page_btn, TplCb.filter(F.action == TplAction.PAGE))
    r.callback_query.register(use_btn, TplCb.filter(F.action == TplAction.USE))
    r.callback_query.register(cancel_btn, TplCb.filter(F.action == TplAction.CANCEL))
    r.message.register(photo_in, TemplateFlow.photo, Magic(~F.text.startswith("/")))
    return r
