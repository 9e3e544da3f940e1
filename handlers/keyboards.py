"""Inline keyboards as plain functions of (language, data). No I/O here; callback data from
handlers.callbacks.

Keyboards that depend only on hashable arguments are cached (functools.lru_cache, bounded):
building one through InlineKeyboardBuilder validates and deep-copies every button, which was a
visible share of the CPU per update. Sharing one markup between replies is safe as long as
nobody changes one after it is built: aiogram's markups are mutable pydantic models, but sending
only serialises them and no handler edits a markup it got from here (build a new one instead;
tests/unit/conversation/test_start.py checks a conversation leaves the cached ones as built).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.services.accounts import Pack
from bot.services.followups import FollowAction, Offer
from handlers.callbacks import AssistAction, AssistCb
from storage.repository import MAX_VARIANTS
from handlers.callbacks import (
    ACTION_OF_JOB,
    JOB_CODES,
    OPEN_VALUES,
    FlowAction,
    FlowCb,
    FollowCb,
    GenAction,
    GenCb,
    JobPickCb,
    LangCb,
    LibCb,
    MenuAction,
    MenuCb,
    OptCb,
    PackCb,
    PickCb,
    RefAction,
    RefCb,
    SelfTestCb,
    TplAction,
    TplCb,
    VariantsCb,
)
from handlers.texts import tr
from kie_client.catalog import Job, ModelSpec, OptionSpec


def option_label(lang: str, option: OptionSpec) -> str:
    key = f"label_{option.name}"
    try:
        return tr(lang, key)
    except KeyError:
        return str(option.label)


def value_text(lang: str, value: Any, option: OptionSpec | None = None) -> str:
    if isinstance(value, bool):
        return tr(lang, "value_on" if value else "value_off")
    if option is not None and option.name == "duration":
        return tr(lang, "unit_seconds", n=value)
    if option is not None:
        # Words such as quality "basic"/"high" are translated; sizes and ratios read the same.
        try:
            return tr(lang, f"value_{option.name}_{value}")
        except KeyError:
            pass
    return str(value)


def options_summary(lang: str, spec: ModelSpec, options: dict) -> str:
    """One line such as "Aspect ratio: 16:9 · Quality: high" (only options the model has)."""
    parts = [
        f"{option_label(lang, o)}: {value_text(lang, options.get(o.name, o.default), o)}"
        for o in spec.options
    ]
    return " · ".join(parts) if parts else tr(lang, "options_none")


def _menu(action: MenuAction) -> MenuCb:
    return MenuCb(action=action)


def _flow(draft: int, action: FlowAction) -> FlowCb:
    return FlowCb(draft=draft, action=action)


def _gen(action: GenAction, generation_id: int) -> GenCb:
    return GenCb(action=action, generation_id=generation_id)


@lru_cache(maxsize=8)
def main_menu(lang: str) -> InlineKeyboardMarkup:
    """The jobs a person has in mind (two per row), photo templates, then balance, library and
    help."""
    kb = InlineKeyboardBuilder()
    for job in Job:
        kb.button(text=tr(lang, f"job_{job.value}"), callback_data=_menu(ACTION_OF_JOB[job]))
    kb.button(text=tr(lang, "btn_templates"), callback_data=TplCb(action=TplAction.OPEN))
    kb.button(text=tr(lang, "btn_balance"), callback_data=_menu(MenuAction.BALANCE))
    kb.button(text=tr(lang, "btn_library"), callback_data=_menu(MenuAction.LIBRARY))
    kb.button(text=tr(lang, "btn_help"), callback_data=_menu(MenuAction.HELP))
    kb.adjust(2, 2, 2, 1, 2, 1)
    return kb.as_markup()


def model_picker(
    lang: str, models: Iterable[tuple[ModelSpec, int]], *, src: int = 0, job: Job | None = None
) -> InlineKeyboardMarkup:
    """models: (ModelSpec, starting price) pairs. One model per row, name and price on the
    button; `job` is the section the pick belongs to (remembered as its last model)."""
    return _model_picker(lang, tuple((spec.key, spec.name, price) for spec, price in models), src,
                         job.value if job else "")


@lru_cache(maxsize=256)
def _model_picker(lang: str, models: tuple[tuple[str, str, int], ...], src: int, job: str
                  ) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for key, name, price in models:
        kb.button(
            text=tr(lang, "model_button", name=name, price=price),
            callback_data=(JobPickCb(model=key, job=JOB_CODES[job], source_id=src) if job
                           else PickCb(model=key, source_id=src)),
        )
    kb.button(text=tr(lang, "btn_back"), callback_data=_menu(MenuAction.HOME))
    kb.adjust(1)
    return kb.as_markup()


def options_kb(lang: str, d: int, spec: ModelSpec, options: dict,
               price: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    sizes: list[int] = []
    for i, o in enumerate(spec.options):
        current = options.get(o.name, o.default)
        text = tr(lang, "btn_option", label=option_label(lang, o), value=value_text(lang, current, o))
        if o.kind == "bool":
            # A toggle needs no second screen: the tap flips it.
            flip = list(o.offered).index(not current) if (not current) in list(o.offered) else 0
            kb.button(text=text, callback_data=OptCb(draft=d, option=i, value=flip))
        else:
            kb.button(text=text + " ▸", callback_data=OptCb(draft=d, option=i, value=OPEN_VALUES))
        sizes.append(1)
    kb.button(text=tr(lang, "btn_continue", price=price), callback_data=_flow(d, FlowAction.NEXT))
    kb.button(text=tr(lang, "btn_back"), callback_data=_flow(d, FlowAction.BACK))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=_flow(d, FlowAction.CANCEL))
    kb.adjust(*sizes, 1, 2)
    return kb.as_markup()


def option_values_kb(lang: str, d: int, index: int, option: OptionSpec,
                     current: Any) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    values: Sequence[Any] = list(option.offered)
    for vi, value in enumerate(values):
        mark = "✅ " if value == current else ""
        kb.button(text=mark + value_text(lang, value, option),
                  callback_data=OptCb(draft=d, option=index, value=vi))
    kb.button(text=tr(lang, "btn_back"), callback_data=_flow(d, FlowAction.OPTIONS))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=_flow(d, FlowAction.CANCEL))
    kb.adjust(*([3] * (len(values) // 3)), *([len(values) % 3] if len(values) % 3 else []), 2)
    return kb.as_markup()


@lru_cache(maxsize=1024)
def step_kb(lang: str, d: int) -> InlineKeyboardMarkup:
    """Back and Cancel under the photo and prompt questions."""
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_back"), callback_data=_flow(d, FlowAction.BACK))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=_flow(d, FlowAction.CANCEL))
    kb.adjust(2)
    return kb.as_markup()


@lru_cache(maxsize=1024)
def card_kb(lang: str, d: int, price: int, *, short: bool = False,
            prompt: bool = True) -> InlineKeyboardMarkup:
    """`prompt`: the model takes one (tools do not: no prompt button)."""
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_generate", price=price), callback_data=_flow(d, FlowAction.GENERATE))
    if short:
        kb.button(text=tr(lang, "btn_topup"), callback_data=_menu(MenuAction.TOP_UP))
    kb.button(text=tr(lang, "btn_edit_options"), callback_data=_flow(d, FlowAction.OPTIONS))
    if prompt:
        kb.button(text=tr(lang, "btn_edit_prompt"), callback_data=_flow(d, FlowAction.PROMPT))
    kb.button(text=tr(lang, "btn_other_model"), callback_data=_flow(d, FlowAction.MODEL))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=_flow(d, FlowAction.CANCEL))
    kb.adjust(*([1, 1] if short else [1]), *((2, 2) if prompt else (2, 1)))
    return kb.as_markup()


def topup_kb(lang: str, packs: Iterable[Pack]) -> InlineKeyboardMarkup:
    return _topup_kb(lang, tuple((pack.stars, pack.credits) for pack in packs))


@lru_cache(maxsize=8)
def _topup_kb(lang: str, packs: tuple[tuple[int, int], ...]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for stars, credits in packs:
        kb.button(
            text=tr(lang, "pack_button", stars=stars, credits=credits),
            callback_data=PackCb(stars=stars, credits=credits),
        )
    kb.button(text=tr(lang, "btn_menu"), callback_data=_menu(MenuAction.HOME))
    kb.adjust(1)
    return kb.as_markup()


@lru_cache(maxsize=8)
def balance_kb(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_topup"), callback_data=_menu(MenuAction.TOP_UP))
    kb.button(text=tr(lang, "btn_menu"), callback_data=_menu(MenuAction.HOME))
    kb.adjust(1)
    return kb.as_markup()


@lru_cache(maxsize=8)
def menu_only_kb(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_menu"), callback_data=_menu(MenuAction.HOME))
    return kb.as_markup()


def library_kb(lang: str, ids: Sequence[int], page: int, pages: int,
               first_number: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for n, gid in enumerate(ids, start=first_number):
        kb.button(text=str(n), callback_data=_gen(GenAction.SHOW, gid))
    nav = 0
    if page > 0:
        kb.button(text="◀", callback_data=LibCb(page=page - 1))
        nav += 1
    if page + 1 < pages:
        kb.button(text="▶", callback_data=LibCb(page=page + 1))
        nav += 1
    kb.button(text=tr(lang, "btn_menu"), callback_data=_menu(MenuAction.HOME))
    row = min(len(ids), 5) or 1
    kb.adjust(*([row] * ((len(ids) + row - 1) // row)), *([nav] if nav else []), 1)
    return kb.as_markup()


@lru_cache(maxsize=8)
def lang_kb() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text="🇷🇺 Русский", callback_data=LangCb(language="ru"))
    kb.button(text="🇬🇧 English", callback_data=LangCb(language="en"))
    kb.adjust(2)
    return kb.as_markup()


def selftest_kb(models: Iterable[ModelSpec]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for spec in models:
        kb.button(text=f"🧪 {spec.name}", callback_data=SelfTestCb(model=spec.key))
    kb.adjust(1)
    return kb.as_markup()


def queued_kb(lang: str, generation_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_cancel"), callback_data=_gen(GenAction.CANCEL, generation_id))
    return kb.as_markup()


def result_kb(lang: str, generation_id: int, *, is_image: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_again"), callback_data=_gen(GenAction.AGAIN, generation_id))
    kb.button(text=tr(lang, "btn_original"), callback_data=_gen(GenAction.ORIGINAL, generation_id))
    if is_image:
        kb.button(text=tr(lang, "btn_animate"), callback_data=_gen(GenAction.ANIMATE, generation_id))
    kb.adjust(2, 1)
    return kb.as_markup()


# photo templates (issue 14)
def template_card_kb(lang: str, index: int, total: int, key: str, price: int) -> InlineKeyboardMarkup:
    """◀ ▶ (wrapping; none with a single template), "Use · N⭐", Menu."""
    kb = InlineKeyboardBuilder()
    if total > 1:
        kb.button(text="◀", callback_data=TplCb(action=TplAction.PAGE, index=(index - 1) % total))
        kb.button(text="▶", callback_data=TplCb(action=TplAction.PAGE, index=(index + 1) % total))
    kb.button(text=tr(lang, "tpl_use", price=price),
              callback_data=TplCb(action=TplAction.USE, key=key, price=price))
    kb.button(text=tr(lang, "btn_menu"), callback_data=_menu(MenuAction.HOME))
    kb.adjust(*((2,) if total > 1 else ()), 1, 1)
    return kb.as_markup()


@lru_cache(maxsize=8)
def template_wait_kb(lang: str) -> InlineKeyboardMarkup:
    """Under the question for the photo(s): Cancel."""
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_cancel"), callback_data=TplCb(action=TplAction.CANCEL))
    return kb.as_markup()
# prompt helper (issue 14)
def with_assist_row(kb: InlineKeyboardMarkup, lang: str, d: int, spec: ModelSpec,
                    opts: dict, helper_price: int | None,
                    switch: OptionSpec | None) -> InlineKeyboardMarkup:
    """The card's keyboard with the prompt helper's row under Generate: the model's own switch
    when it has one, else "✨ Improve" (with its price when priced) when the helper is on
    (`helper_price` not None). A new markup: keyboards are never mutated (memoised JSON)."""
    if switch is not None:
        state = value_text(lang, bool(opts.get(switch.name, switch.default)))
        text = tr(lang, "btn_assist_switch", state=state)
        action = AssistAction.SWITCH
    elif helper_price is not None and spec.prompt:
        text = (tr(lang, "btn_assist_priced", price=helper_price) if helper_price
                else tr(lang, "btn_assist"))
        action = AssistAction.IMPROVE
    else:
        return kb
    rows = list(kb.inline_keyboard)
    button = InlineKeyboardButton(text=text,
                                  callback_data=AssistCb(draft=d, action=action).pack())
    return InlineKeyboardMarkup(inline_keyboard=[rows[0], [button], *rows[1:]])


def assist_kb(lang: str, d: int) -> InlineKeyboardMarkup:
    """Under an improved prompt: use it, edit it, or keep the original."""
    kb = InlineKeyboardBuilder()
    for key, action in (("btn_assist_accept", AssistAction.ACCEPT),
                        ("btn_assist_edit", AssistAction.EDIT),
                        ("btn_assist_keep", AssistAction.KEEP)):
        kb.button(text=tr(lang, key), callback_data=AssistCb(draft=d, action=action))
    kb.adjust(1, 2)
    return kb.as_markup()
# follow-ups and variants (issue 14)
_FOLLOW_TEXT = {FollowAction.EDIT: "fu_btn_edit", FollowAction.UPSCALE: "fu_btn_upscale",
                FollowAction.REMOVE_BG: "fu_btn_remove_bg", FollowAction.BETTER: "fu_btn_better"}


def followup_kb(lang: str, generation_id: int, *, again_price: int | None,
                animate_price: int | None, offers: Sequence[Offer] = (),
                variants: Sequence[int] = ()) -> InlineKeyboardMarkup:
    """Under a result: Again and Original file, then the follow-ups on sale, each with its
    price (Animate "from" the cheapest animate model). `variants`: the generation ids of an
    album's pictures, as numbered buttons that open each one with its own buttons.

    Built as rows directly, not through InlineKeyboardBuilder: its as_markup() deep-copies
    every button, and this keyboard goes under every delivered result."""
    def button(text: str, data: Any) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=data.pack())

    rows: list[list[InlineKeyboardButton]] = []
    if len(variants) > 1:
        rows.append([button(str(n), _gen(GenAction.SHOW, gid))
                     for n, gid in enumerate(variants, start=1)])
    again = (tr(lang, "btn_again") if again_price is None
             else tr(lang, "fu_btn_again", price=again_price))
    rows.append([button(again, _gen(GenAction.AGAIN, generation_id)),
                 button(tr(lang, "btn_original"), _gen(GenAction.ORIGINAL, generation_id))])
    by_action = {o.action: o for o in offers}
    row: list[tuple[str, Any]] = []
    edit = by_action.get(FollowAction.EDIT)
    if edit is not None:
        row.append((tr(lang, "fu_btn_edit", price=edit.price),
                    FollowCb(action=FollowAction.EDIT, generation_id=generation_id)))
    if animate_price is not None:
        row.append((tr(lang, "fu_btn_animate", price=animate_price),
                    _gen(GenAction.ANIMATE, generation_id)))
    for action in (FollowAction.UPSCALE, FollowAction.REMOVE_BG, FollowAction.BETTER):
        offer = by_action.get(action)
        if offer is not None:
            row.append((tr(lang, _FOLLOW_TEXT[action], price=offer.price, name=offer.name),
                        FollowCb(action=action, generation_id=generation_id)))
    # Two per row; the "better" button names a model (it comes last), so it gets a row of its own.
    wide = 1 if FollowAction.BETTER in by_action else 0
    narrow = len(row) - wide
    for start in range(0, narrow, 2):
        rows.append([button(text, data) for text, data in row[start:min(start + 2, narrow)]])
    if wide:
        rows.append([button(*row[-1])])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def offers_variants(spec: ModelSpec) -> bool:
    """Image models that take a prompt make 1–4 variants; tools and videos make one."""
    return spec.kind == "image" and spec.prompt


def with_variants(markup: InlineKeyboardMarkup, lang: str, d: int,
                  chosen: int) -> InlineKeyboardMarkup:
    """The card's keyboard with a "Variants: 1 2 3 4" row under Generate (and Top up), above
    the edit buttons (a new markup: `markup` may be a cached one, never changed)."""
    row = [InlineKeyboardButton(
        text=("✅ " if n == chosen else "") + (f"{tr(lang, 'label_variants')}: {n}" if n == 1 else str(n)),
        callback_data=VariantsCb(draft=d, n=n).pack()) for n in range(1, MAX_VARIANTS + 1)]
    rows = list(markup.inline_keyboard)
    return InlineKeyboardMarkup(inline_keyboard=[*rows[:-2], row, *rows[-2:]])
# referrals, promo codes, daily free (issue 14)
@lru_cache(maxsize=8)
def balance_growth_kb(lang: str) -> InlineKeyboardMarkup:
    """The balance screen: top up, invite friends, a promo code, the menu."""
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_topup"), callback_data=_menu(MenuAction.TOP_UP))
    kb.button(text=tr(lang, "btn_invite"), callback_data=RefCb(action=RefAction.INVITE))
    kb.button(text=tr(lang, "btn_promo"), callback_data=RefCb(action=RefAction.PROMO))
    kb.button(text=tr(lang, "btn_menu"), callback_data=_menu(MenuAction.HOME))
    kb.adjust(1, 2, 1)
    return kb.as_markup()


def referral_kb(lang: str, share_url: str) -> InlineKeyboardMarkup:
    """Under /ref: share the link through Telegram's share sheet, a promo code, the menu."""
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_ref_share"), url=share_url)
    kb.button(text=tr(lang, "btn_promo"), callback_data=RefCb(action=RefAction.PROMO))
    kb.button(text=tr(lang, "btn_menu"), callback_data=_menu(MenuAction.HOME))
    kb.adjust(1)
    return kb.as_markup()
# broadcast and support (issue 14)
from handlers.callbacks import BcAction, BcCb, BcSegment  # noqa: E402 (kept inside the markers)


@lru_cache(maxsize=8)
def bc_abort_kb(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_cancel"), callback_data=BcCb(action=BcAction.ABORT))
    return kb.as_markup()


@lru_cache(maxsize=8)
def bc_button_kb(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "bc_btn_skip"), callback_data=BcCb(action=BcAction.SKIP))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=BcCb(action=BcAction.ABORT))
    kb.adjust(1)
    return kb.as_markup()


@lru_cache(maxsize=8)
def bc_segments_kb(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for segment in (BcSegment.ALL, BcSegment.PAYING, BcSegment.RU, BcSegment.EN,
                    BcSegment.ACTIVE, BcSegment.BALANCE):
        kb.button(text=tr(lang, f"bc_btn_seg_{segment.value}"),
                  callback_data=BcCb(action=BcAction.SEGMENT, segment=segment))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=BcCb(action=BcAction.ABORT))
    kb.adjust(2, 2, 1, 1, 1)
    return kb.as_markup()


@lru_cache(maxsize=64)
def bc_card_kb(lang: str, broadcast_id: int, state: str,
               recipients: int = 0) -> InlineKeyboardMarkup | None:
    """A broadcast's card: Send/Cancel on the preview, Pause or Resume and Cancel while it
    runs, nothing once it is over."""
    kb = InlineKeyboardBuilder()
    if state == "draft":
        kb.button(text=tr(lang, "bc_btn_send", n=recipients),
                  callback_data=BcCb(action=BcAction.SEND, broadcast_id=broadcast_id))
    elif state == "running":
        kb.button(text=tr(lang, "bc_btn_pause"),
                  callback_data=BcCb(action=BcAction.PAUSE, broadcast_id=broadcast_id))
    elif state == "paused":
        kb.button(text=tr(lang, "bc_btn_resume"),
                  callback_data=BcCb(action=BcAction.RESUME, broadcast_id=broadcast_id))
    else:
        return None
    kb.button(text=tr(lang, "btn_cancel"),
              callback_data=BcCb(action=BcAction.CANCEL, broadcast_id=broadcast_id))
    return kb.as_markup()
