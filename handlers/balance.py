"""/balance, the top-up packs and the Stars invoice."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, LabeledPrice, Message

from bot.services.accounts import AccountService
from handlers import keyboards, screens
from handlers.callbacks import MenuAction, MenuCb, PackCb
from handlers.errors import StaleMenu
from handlers.texts import tr

LEDGER_LINES = 5


async def balance_text(lang: str, user_id: int, accounts: AccountService) -> str:
    """The balance with the last few ledger rows, newest first."""
    balance, entries = await accounts.balance_and_ledger(user_id, limit=LEDGER_LINES)
    lines = [
        tr(lang, "ledger_line", date=e.created_at.strftime("%d.%m %H:%M"),
           delta=f"{e.delta:+d}", reason=_reason(lang, e.reason))
        for e in entries
    ]
    return tr(lang, "balance", balance=balance,
              lines="\n".join(lines) or tr(lang, "balance_no_history"))


def _reason(lang: str, reason: str) -> str:
    try:
        return tr(lang, f"reason_{reason}")
    except KeyError:
        return reason


async def balance_cmd(message: Message, lang: str, accounts: AccountService) -> None:
    text = await balance_text(lang, message.from_user.id, accounts)
    await message.answer(text, reply_markup=keyboards.balance_growth_kb(lang))


async def balance_btn(query: CallbackQuery, lang: str, accounts: AccountService) -> None:
    await query.answer()
    text = await balance_text(lang, query.from_user.id, accounts)
    await screens.show(query, text, keyboards.balance_growth_kb(lang))


async def topup_cmd(message: Message, lang: str, accounts: AccountService) -> None:
    await message.answer(tr(lang, "topup_choose"), reply_markup=keyboards.topup_kb(lang, accounts.packs))


async def topup_btn(query: CallbackQuery, lang: str, accounts: AccountService) -> None:
    await query.answer()
    # A new message, so the card that sent the user here keeps its Generate button.
    await query.bot.send_message(query.from_user.id, tr(lang, "topup_choose"),
                                 reply_markup=keyboards.topup_kb(lang, accounts.packs))


async def invoice(query: CallbackQuery, callback_data: PackCb, lang: str, bot: Bot,
                  accounts: AccountService) -> None:
    """A Stars invoice for a pack still on offer; a pack no longer configured is a stale button."""
    pack = accounts.find_pack(callback_data.stars, callback_data.credits)
    if pack is None:
        raise StaleMenu()
    await query.answer()
    me = await bot.me()  # fetched at start (handlers.on_startup) and cached by aiogram
    await bot.send_invoice(
        chat_id=query.from_user.id,
        title=tr(lang, "invoice_title", credits=pack.credits,
                 bot=me.first_name or me.username or "")[:32],
        description=tr(lang, "invoice_description", credits=pack.credits)[:255],
        payload=pack.payload,
        currency="XTR",
        prices=[LabeledPrice(label=tr(lang, "invoice_label", credits=pack.credits), amount=pack.stars)],
    )


def router() -> Router:
    r = Router(name="balance")
    r.message.register(balance_cmd, Command("balance"))
    r.callback_query.register(balance_btn, MenuCb.filter(F.action == MenuAction.BALANCE))
    r.message.register(topup_cmd, Command("topup", "buy"))
    r.callback_query.register(topup_btn, MenuCb.filter(F.action == MenuAction.TOP_UP))
    r.callback_query.register(invoice, PackCb.filter())
    return r
