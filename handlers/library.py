"""/library: newest first, paged; a number resends the file or explains the failure."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.presenter import prompt_of
from handlers import keyboards, screens
from handlers.callbacks import GenCb, LibCb, MenuCb
from handlers.errors import StaleMenu
from handlers.failures import failure_text
from handlers.texts import tr

PAGE_SIZE = 5
EXCERPT = 60
# Everything the user paid for or tried, so a failure and its refund can be looked up too.
SHOWN = ("queued", "generating", "submit_unknown", "storing", "succeeded", "failed")


def _status(lang: str, status: str) -> str:
    try:
        return tr(lang, f"status_{status}")
    except KeyError:
        return status


async def library_screen(lang: str, user_id: int, page: int, catalog: Any, generations: Any):
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
        prompt = prompt_of(g)
        if len(prompt) > EXCERPT:
            prompt = prompt[: EXCERPT - 1] + "…"
        try:
            name = catalog.get(g.model_key).name
        except Exception:  # noqa: BLE001 - a model since removed from the catalog
            name = g.model_key
        date = g.created_at.strftime("%d.%m.%Y %H:%M") if g.created_at else ""
        lines.append(tr(lang, "library_item", n=n, name=name, status=_status(lang, g.status),
                        date=date, prompt=f"«{prompt}»" if prompt else ""))
    kb = keyboards.library_kb(lang, [g.id for g in items], page, pages, first)
    return "\n".join(lines), kb


def router() -> Router:
    r = Router(name="library")

    @r.message(Command("library"))
    async def library_cmd(message: Message, lang: str, catalog: Any, generations: Any) -> None:
        text, kb = await library_screen(lang, message.from_user.id, 0, catalog, generations)
        await message.answer(text, reply_markup=kb)

    @r.callback_query(MenuCb.filter(F.a == "lib"))
    async def library_btn(query: CallbackQuery, lang: str, catalog: Any, generations: Any) -> None:
        text, kb = await library_screen(lang, query.from_user.id, 0, catalog, generations)
        await query.answer()
        await screens.show(query, text, kb)

    @r.callback_query(LibCb.filter())
    async def page(query: CallbackQuery, callback_data: LibCb, lang: str, catalog: Any,
                   generations: Any) -> None:
        if callback_data.p < 0:
            raise StaleMenu()
        text, kb = await library_screen(lang, query.from_user.id, callback_data.p, catalog, generations)
        await query.answer()
        await screens.show(query, text, kb)

    @r.callback_query(GenCb.filter(F.a == "show"))
    async def show_item(query: CallbackQuery, callback_data: GenCb, lang: str, generations: Any) -> None:
        g = await generations.get(user_id=query.from_user.id, generation_id=callback_data.g)
        if g is None:
            raise StaleMenu()
        await query.answer()
        chat = query.from_user.id
        if g.status == "succeeded":
            if not await generations.resend(user_id=chat, chat_id=chat, generation_id=g.id):
                await query.bot.send_message(chat, tr(lang, "resend_failed"))
        elif g.status == "failed":
            reason = (failure_text(lang, g.error, g.fail_code) if g.error
                      else tr(lang, "failure_default"))
            key = "lib_failed" if g.cost else "lib_failed_free"
            await query.bot.send_message(chat, tr(lang, key, reason=reason, cost=g.cost))
        else:
            await query.bot.send_message(chat, tr(lang, "lib_pending", status=_status(lang, g.status)))

    return r
