"""/library: newest first, paged; a number resends the file or explains the failure."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.services.generation import LABEL_KEY, GenerationService
from handlers import keyboards, screens
from handlers.callbacks import GenAction, GenCb, LibCb, MenuAction, MenuCb
from handlers.errors import StaleMenu
from handlers.failures import failure_text
from handlers.texts import tr
from kie_client.catalog import Catalog, CatalogError
from storage.models import GenerationStatus

PAGE_SIZE = 5
EXCERPT = 60
# Everything the user paid for or tried, so a failure and its refund can be looked up too.
SHOWN = tuple(status.value for status in GenerationStatus)


def _status(lang: str, status: str) -> str:
    try:
        return tr(lang, f"status_{status}")
    except KeyError:
        return status


def _model_name(catalog: Catalog, key: str) -> str:
    try:
        return catalog.get(key).name
    except CatalogError:  # a model since removed from the catalog
        return key


async def library_screen(lang: str, user_id: int, page: int, catalog: Catalog,
                         generations: GenerationService) -> screens.Screen:
    """One page of the library; StaleMenu for a page that no longer exists."""
    items, total = await generations.library(user_id=user_id, page=page, page_size=PAGE_SIZE,
                                             statuses=SHOWN)
    if total == 0:
        return tr(lang, "library_empty"), keyboards.main_menu(lang)
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    if page >= pages:
        raise StaleMenu()
    first = page * PAGE_SIZE + 1
    lines = [tr(lang, "library_title", total=total, page=page + 1, pages=pages), ""]
    for n, g in enumerate(items, start=first):
        prompt = (g.options or {}).get(LABEL_KEY) or g.prompt  # a photo template's name
        if len(prompt) > EXCERPT:
            prompt = prompt[: EXCERPT - 1] + "…"
        date = g.created_at.strftime("%d.%m.%Y %H:%M") if g.created_at else ""
        lines.append(tr(lang, "library_item", n=n, name=_model_name(catalog, g.model_key),
                        status=_status(lang, g.status), date=date,
                        prompt=f"«{prompt}»" if prompt else ""))
    kb = keyboards.library_kb(lang, [g.id for g in items], page, pages, first)
    return "\n".join(lines), kb


async def library_cmd(message: Message, lang: str, catalog: Catalog,
                      generations: GenerationService) -> None:
    text, kb = await library_screen(lang, message.from_user.id, 0, catalog, generations)
    await message.answer(text, reply_markup=kb)


async def library_btn(query: CallbackQuery, lang: str, catalog: Catalog,
                      generations: GenerationService) -> None:
    text, kb = await library_screen(lang, query.from_user.id, 0, catalog, generations)
    await query.answer()
    await screens.show(query, text, kb)


async def library_page(query: CallbackQuery, callback_data: LibCb, lang: str, catalog: Catalog,
                       generations: GenerationService) -> None:
    if callback_data.page < 0:
        raise StaleMenu()
    text, kb = await library_screen(lang, query.from_user.id, callback_data.page, catalog,
                                    generations)
    await query.answer()
    await screens.show(query, text, kb)


async def show_item(query: CallbackQuery, callback_data: GenCb, lang: str,
                    generations: GenerationService) -> None:
    """A result is sent again; a failure is explained (with its refund); anything else is
    still running and says where it is."""
    g = await generations.get(user_id=query.from_user.id, generation_id=callback_data.generation_id)
    if g is None:
        raise StaleMenu()
    await query.answer()
    chat = query.from_user.id
    if g.status == GenerationStatus.succeeded:
        if not await generations.resend(user_id=chat, chat_id=chat, generation_id=g.id):
            await query.bot.send_message(chat, tr(lang, "resend_failed"))
    elif g.status == GenerationStatus.failed:
        reason = (failure_text(lang, g.error, g.fail_code) if g.error
                  else tr(lang, "failure_default"))
        key = "lib_failed" if g.cost else "lib_failed_free"
        await query.bot.send_message(chat, tr(lang, key, reason=reason, cost=g.cost))
    else:
        await query.bot.send_message(chat, tr(lang, "lib_pending", status=_status(lang, g.status)))


def router() -> Router:
    r = Router(name="library")
    r.message.register(library_cmd, Command("library"))
    r.callback_query.register(library_btn, MenuCb.filter(F.action == MenuAction.LIBRARY))
    r.callback_query.register(library_page, LibCb.filter())
    r.callback_query.register(show_item, GenCb.filter(F.action == GenAction.SHOW))
    return r
