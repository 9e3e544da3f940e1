"""/start (with deep-link payload), the main menu, /cancel."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.services.accounts import AccountService
from handlers import draft as drafts
from handlers import screens
from handlers.callbacks import MenuAction, MenuCb
from handlers.texts import tr
from storage.models import User

# Deep-link payloads (t.me/<bot>?start=<payload>) are kept in FSM data under "start_payload"
# (the first one only) for referral programmes later; Telegram allows [A-Za-z0-9_-]{1,64}.
_PAYLOAD_MAX = 64


async def start(message: Message, command: CommandObject, state: FSMContext, lang: str,
                user: User, user_created: bool) -> None:
    """Greeting and main menu; the signup bonus is mentioned only on the very first /start."""
    await drafts.drop(state)
    payload = (command.args or "").strip()[:_PAYLOAD_MAX]
    if payload and not (await state.get_data()).get("start_payload"):
        await state.update_data(start_payload=payload)
    name = message.from_user.first_name if message.from_user else ""
    lines = [tr(lang, "welcome", name=name)]
    if user_created and user.balance > 0:
        lines.append(tr(lang, "welcome_bonus", bonus=user.balance))
    text, kb = screens.main_menu(lang, user.balance)
    # One message, not two: a greeting plus a menu would spend Telegram's per-chat burst.
    await message.answer("\n".join(lines) + "\n\n" + text, reply_markup=kb)


async def menu(message: Message, state: FSMContext, lang: str, accounts: AccountService) -> None:
    """/menu and /cancel drop any draft; /cancel says so when there was one."""
    had_draft = (await state.get_data()).get("draft")
    await drafts.drop(state)
    if had_draft and message.text and message.text.startswith("/cancel"):
        await message.answer(tr(lang, "cancelled"))
    text, kb = screens.main_menu(lang, await accounts.balance(message.from_user.id))
    await message.answer(text, reply_markup=kb)


async def home(query: CallbackQuery, lang: str, accounts: AccountService) -> None:
    await query.answer()
    text, kb = screens.main_menu(lang, await accounts.balance(query.from_user.id))
    await query.message.edit_text(text, reply_markup=kb)


def router() -> Router:
    r = Router(name="start")
    r.message.register(start, CommandStart())
    r.message.register(menu, Command("menu", "cancel"))
    r.callback_query.register(home, MenuCb.filter(F.action == MenuAction.HOME))
    return r
