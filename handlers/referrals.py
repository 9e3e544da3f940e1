"""Invite links (/ref), promo codes (/promo, the balance screen's button, ?start=promo_CODE) and
admins' promo commands (/promo_new, /promos, /promo_off, /promo_on).

Money moves only in the repository (storage/repository/_referrals.py): referral bonuses inside the
purchase's transaction, a redemption as a keyed row; here is only what people see."""

from __future__ import annotations

from urllib.parse import quote

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, LinkPreviewOptions, Message

from bot.services.accounts import AccountService
from bot.services.referrals import PromoError, PromoUsage, ReferralService, inviter_of, promo_of
from handlers import keyboards, screens
from handlers import start as start_handlers
from handlers.admin import IsAdmin
from handlers.callbacks import RefAction, RefCb
from handlers.filters import Magic
from handlers.texts import tr
from storage.models import User


_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # the invite link is the text, not a card


class PromoInput(StatesGroup):
    code = State()  # the balance screen's "🎟 Promo code" asked for one


# -- invite link -----------------------------------------------------------------------------

async def ref_text(lang: str, user_id: int, bot: Bot, referrals: ReferralService) -> tuple[str, str]:
    """The invite screen and the link on it."""
    me = await bot.me()
    link = referrals.link(me.username or "", user_id)
    terms = []
    if referrals.bonus:
        terms.append(tr(lang, "ref_terms_bonus", bonus=referrals.bonus))
    if referrals.share_percent:
        terms.append(tr(lang, "ref_terms_share", percent=referrals.share_percent))
    stats = await referrals.stats(user_id)
    text = tr(lang, "ref_screen", link=link,
              terms="\n".join(terms) or tr(lang, "ref_terms_none"),
              invited=stats.invited, paid=stats.paid, earned=stats.earned)
    return text, link


def _share_url(lang: str, link: str) -> str:
    return (f"https://t.me/share/url?url={quote(link, safe='')}"
            f"&text={quote(tr(lang, 'ref_share_text'), safe='')}")


async def ref_cmd(message: Message, lang: str, bot: Bot, referrals: ReferralService) -> None:
    text, link = await ref_text(lang, message.from_user.id, bot, referrals)
    await message.answer(text, reply_markup=keyboards.referral_kb(lang, _share_url(lang, link)),
                         link_preview_options=_NO_PREVIEW)


async def ref_btn(query: CallbackQuery, lang: str, bot: Bot, referrals: ReferralService) -> None:
    await query.answer()
    text, link = await ref_text(lang, query.from_user.id, bot, referrals)
    await screens.show(query, text, keyboards.referral_kb(lang, _share_url(lang, link)))


# -- promo codes -----------------------------------------------------------------------------

async def redeem_text(lang: str, code: str, user_id: int, referrals: ReferralService,
                      accounts: AccountService) -> str:
    """The one line a redemption gets: the credits and balance, or why not."""
    try:
        credits = await referrals.redeem(code, user_id)
    except PromoError as exc:
        return tr(lang, f"promo_{exc.reason}", code=exc.code)
    return tr(lang, "promo_ok", code=code.strip().upper(), credits=credits,
              balance=await accounts.balance(user_id))


async def promo_cmd(message: Message, command: CommandObject, state: FSMContext, lang: str,
                    referrals: ReferralService, accounts: AccountService) -> None:
    code = (command.args or "").strip()
    if not code:
        await state.set_state(PromoInput.code)
        await message.answer(tr(lang, "promo_ask"), reply_markup=keyboards.menu_only_kb(lang))
        return
    await message.answer(await redeem_text(lang, code, message.from_user.id, referrals, accounts),
                         reply_markup=keyboards.menu_only_kb(lang))


async def promo_btn(query: CallbackQuery, state: FSMContext, lang: str) -> None:
    await query.answer()
    await state.set_state(PromoInput.code)
    await screens.show(query, tr(lang, "promo_ask"), keyboards.menu_only_kb(lang))


async def promo_typed(message: Message, state: FSMContext, lang: str,
                      referrals: ReferralService, accounts: AccountService) -> None:
    await state.set_state(None)
    code = (message.text or "").strip()
    await message.answer(await redeem_text(lang, code, message.from_user.id, referrals, accounts),
                         reply_markup=keyboards.menu_only_kb(lang))


async def deep_link_start(message: Message, command: CommandObject, state: FSMContext, lang: str,
                          user: User, user_created: bool, referrals: ReferralService,
                          accounts: AccountService) -> None:
    """/start ref_<code> or promo_<CODE>: the usual greeting, then what the link did."""
    await start_handlers.start(message, command, state, lang, user, user_created)
    payload = (command.args or "").strip()
    code = promo_of(payload)
    if code is not None:
        await message.answer(await redeem_text(lang, code, message.from_user.id, referrals,
                                               accounts))
    elif (user_created and inviter_of(payload) is not None
          and await referrals.inviter_for(message.from_user.id) is not None and referrals.bonus):
        await message.answer(tr(lang, "ref_welcome", bonus=referrals.bonus))


def _is_growth_link(message: Message) -> bool:
    args = (message.text or "").partition(" ")[2].strip()
    return promo_of(args) is not None or inviter_of(args) is not None


# -- admins ----------------------------------------------------------------------------------

async def promo_new(message: Message, command: CommandObject, lang: str, bot: Bot,
                    referrals: ReferralService) -> None:
    try:
        made = await referrals.create(command.args or "", admin_id=message.from_user.id)
    except PromoUsage:
        await message.answer(tr(lang, "adm_promo_usage"))
        return
    if not made.created:
        await message.answer(tr(lang, "adm_promo_exists", code=made.code))
        return
    me = await bot.me()
    until = (tr(lang, "adm_promo_until", date=made.expires_at.strftime("%d.%m.%Y %H:%M UTC"))
             if made.expires_at else "")
    await message.answer(tr(lang, "adm_promo_created", code=made.code, credits=made.credits,
                            uses=made.uses, until=until,
                            link=referrals.promo_link(me.username or "", made.code)),
                         link_preview_options=_NO_PREVIEW)


async def promos(message: Message, lang: str, referrals: ReferralService) -> None:
    rows = await referrals.promos()
    if not rows:
        await message.answer(tr(lang, "adm_promos_none"))
        return
    lines = []
    for p in rows:
        state = ("adm_promo_state_off" if not p.active else
                 "adm_promo_state_expired" if referrals.expired(p) else
                 "adm_promo_state_used_up" if p.used >= p.max_uses else "adm_promo_state_on")
        until = (tr(lang, "adm_promo_until", date=p.expires_at.strftime("%d.%m.%Y %H:%M UTC"))
                 if p.expires_at else "")
        lines.append(tr(lang, "adm_promo_line", code=p.code, credits=p.credits, used=p.used,
                        uses=p.max_uses, state=tr(lang, state), until=until))
    await message.answer(tr(lang, "adm_promos", lines="\n".join(lines)))


async def promo_switch(message: Message, command: CommandObject, lang: str,
                       referrals: ReferralService) -> None:
    code = (command.args or "").strip().upper()
    active = command.command == "promo_on"
    if not code:
        await message.answer(tr(lang, "adm_promo_usage"))
    elif await referrals.set_active(code, active):
        await message.answer(tr(lang, "adm_promo_switched", code=code,
                                state=tr(lang, "adm_promo_state_on" if active
                                         else "adm_promo_state_off")))
    else:
        await message.answer(tr(lang, "adm_promo_unknown", code=code[:32]))


def router() -> Router:
    r = Router(name="referrals")
    admin = Router(name="referrals_admin")
    admin.message.filter(IsAdmin())
    admin.message.register(promo_new, Command("promo_new"))
    admin.message.register(promos, Command("promos"))
    admin.message.register(promo_switch, Command("promo_off", "promo_on"))
    r.include_router(admin)
    r.message.register(deep_link_start, CommandStart(deep_link=True), Magic(F.func(_is_growth_link)))
    r.message.register(ref_cmd, Command("ref", "invite"))
    r.callback_query.register(ref_btn, RefCb.filter(F.action == RefAction.INVITE))
    r.message.register(promo_cmd, Command("promo"))
    r.callback_query.register(promo_btn, RefCb.filter(F.action == RefAction.PROMO))
    # Only text that is not a command: "/menu" while asked for a code goes where it belongs.
    r.message.register(promo_typed, StateFilter(PromoInput.code),
                       Magic(F.text & ~F.text.startswith("/")))
    return r
