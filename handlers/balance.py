"""/balance, the top-up packs and the Stars invoice."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, LabeledPrice, Message

from handlers import keyboards, screens
from handlers.callbacks import MenuCb, PackCb
from handlers.errors import StaleMenu
from handlers.texts import tr

LEDGER_LINES = 5


async def balance_text(lang: str, user_id: int, accounts: Any) -> str:
    entries = await accounts.ledger(user_id, limit=LEDGER_LINES)
    lines = [
        tr(lang, "ledger_line", date=e.created_at.strftime("%d.%m %H:%M"),
           delta=f"{e.delta:+d}", reason=_reason(lang, e.reason))
        for e in entries
    ]
    return tr(lang, "balance", balance=await accounts.balance(user_id),
              lines="\n".join(lines) or tr(lang, "balance_no_history"))


def _reason(lang: str, reason: str) -> str:
    try:
        return tr(lang, f"reason_{reason}")
    except KeyError:
        return reason


def router() -> Router:
    r = Router(name="balance")

    @r.message(Command("balance"))
    async def balance_cmd(message: Message, lang: str, accounts: Any) -> None:
        text = await balance_text(lang, message.from_user.id, accounts)
        await message.answer(text, reply_markup=keyboards.balance_kb(lang))

    @r.callback_query(MenuCb.filter(F.a == "bal"))
    async def balance_btn(query: CallbackQuery, lang: str, accounts: Any) -> None:
        await query.answer()
        text = await balance_text(lang, query.from_user.id, accounts)
        await screens.show(query, text, keyboards.balance_kb(lang))

    @r.message(Command("topup", "buy"))
    async def topup_cmd(message: Message, lang: str, accounts: Any) -> None:
        await message.answer(tr(lang, "topup_choose"), reply_markup=keyboards.topup_kb(lang, accounts.packs))

    @r.callback_query(MenuCb.filter(F.a == "topup"))
    async def topup_btn(query: CallbackQuery, lang: str, accounts: Any) -> None:
        await query.answer()
        # A new message, so the card that sent the user here keeps its Generate button.
        await query.bot.send_message(query.from_user.id, tr(lang, "topup_choose"),
                                     reply_markup=keyboards.topup_kb(lang, accounts.packs))

    @r.callback_query(PackCb.filter())
    async def invoice(query: CallbackQuery, callback_data: PackCb, lang: str, bot: Bot,
                      accounts: Any) -> None:
        pack = accounts.find_pack(callback_data.s, callback_data.c)
        if pack is None:
            raise StaleMenu()
        await query.answer()
        await bot.send_invoice(
            chat_id=query.from_user.id,
            title=tr(lang, "invoice_title", credits=pack.credits)[:32],
            description=tr(lang, "invoice_description", credits=pack.credits)[:255],
            payload=pack.payload,
            currency="XTR",
            prices=[LabeledPrice(label=tr(lang, "invoice_label", credits=pack.credits), amount=pack.stars)],
        )

    return r
