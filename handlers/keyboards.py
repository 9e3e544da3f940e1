"""Inline keyboards as plain functions of (language, data). No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.callbacks import (
    FlowCb,
    GenCb,
    LangCb,
    LibCb,
    MenuCb,
    OptCb,
    PackCb,
    PickCb,
    SelfTestCb,
)
from handlers.texts import tr


def option_label(lang: str, option: Any) -> str:
    key = f"label_{option.name}"
    try:
        return tr(lang, key)
    except KeyError:
        return str(option.label)


def value_text(lang: str, value: Any, option: Any = None) -> str:
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


def options_summary(lang: str, spec: Any, options: dict) -> str:
    """One line such as "Aspect ratio: 16:9 · Quality: high" (only options the model has)."""
    parts = [
        f"{option_label(lang, o)}: {value_text(lang, options.get(o.name, o.default), o)}"
        for o in spec.options
    ]
    return " · ".join(parts) if parts else tr(lang, "options_none")


def main_menu(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_images"), callback_data=MenuCb(a="img"))
    kb.button(text=tr(lang, "btn_videos"), callback_data=MenuCb(a="vid"))
    kb.button(text=tr(lang, "btn_balance"), callback_data=MenuCb(a="bal"))
    kb.button(text=tr(lang, "btn_library"), callback_data=MenuCb(a="lib"))
    kb.button(text=tr(lang, "btn_help"), callback_data=MenuCb(a="help"))
    kb.adjust(2, 2, 1)
    return kb.as_markup()


def model_picker(
    lang: str, models: Iterable[tuple[Any, int]], *, src: int = 0
) -> InlineKeyboardMarkup:
    """models: (ModelSpec, price) pairs. One model per row, name and price on the button."""
    kb = InlineKeyboardBuilder()
    for spec, price in models:
        kb.button(
            text=tr(lang, "model_button", name=spec.name, price=price),
            callback_data=PickCb(m=spec.key, src=src),
        )
    kb.button(text=tr(lang, "btn_back"), callback_data=MenuCb(a="home"))
    kb.adjust(1)
    return kb.as_markup()


def options_kb(lang: str, d: int, spec: Any, options: dict, price: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    sizes: list[int] = []
    for i, o in enumerate(spec.options):
        current = options.get(o.name, o.default)
        if getattr(o, "kind", "choice") == "bool":
            # A toggle needs no second screen: the tap flips it.
            flip = list(o.values).index(not current) if (not current) in list(o.values) else 0
            kb.button(
                text=tr(lang, "btn_option", label=option_label(lang, o), value=value_text(lang, current, o)),
                callback_data=OptCb(d=d, o=i, v=flip),
            )
        else:
            kb.button(
                text=tr(lang, "btn_option", label=option_label(lang, o), value=value_text(lang, current, o)) + " ▸",
                callback_data=OptCb(d=d, o=i, v=-1),
            )
        sizes.append(1)
    kb.button(text=tr(lang, "btn_continue", price=price), callback_data=FlowCb(d=d, a="next"))
    kb.button(text=tr(lang, "btn_back"), callback_data=FlowCb(d=d, a="back"))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=FlowCb(d=d, a="cancel"))
    kb.adjust(*sizes, 1, 2)
    return kb.as_markup()


def option_values_kb(lang: str, d: int, index: int, option: Any, current: Any) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    values: Sequence[Any] = list(option.values)
    for vi, value in enumerate(values):
        mark = "✅ " if value == current else ""
        kb.button(text=mark + value_text(lang, value, option), callback_data=OptCb(d=d, o=index, v=vi))
    kb.button(text=tr(lang, "btn_back"), callback_data=FlowCb(d=d, a="opts"))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=FlowCb(d=d, a="cancel"))
    kb.adjust(*([3] * (len(values) // 3)), *([len(values) % 3] if len(values) % 3 else []), 2)
    return kb.as_markup()


def step_kb(lang: str, d: int) -> InlineKeyboardMarkup:
    """Back and Cancel under the photo and prompt questions."""
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_back"), callback_data=FlowCb(d=d, a="back"))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=FlowCb(d=d, a="cancel"))
    kb.adjust(2)
    return kb.as_markup()


def card_kb(lang: str, d: int, price: int, *, short: bool = False) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_generate", price=price), callback_data=FlowCb(d=d, a="go"))
    if short:
        kb.button(text=tr(lang, "btn_topup"), callback_data=MenuCb(a="topup"))
    kb.button(text=tr(lang, "btn_edit_options"), callback_data=FlowCb(d=d, a="opts"))
    kb.button(text=tr(lang, "btn_edit_prompt"), callback_data=FlowCb(d=d, a="prompt"))
    kb.button(text=tr(lang, "btn_other_model"), callback_data=FlowCb(d=d, a="model"))
    kb.button(text=tr(lang, "btn_cancel"), callback_data=FlowCb(d=d, a="cancel"))
    kb.adjust(*([1, 1] if short else [1]), 2, 2)
    return kb.as_markup()


def topup_kb(lang: str, packs: Iterable[Any]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for pack in packs:
        kb.button(
            text=tr(lang, "pack_button", stars=pack.stars, credits=pack.credits),
            callback_data=PackCb(s=pack.stars, c=pack.credits),
        )
    kb.button(text=tr(lang, "btn_menu"), callback_data=MenuCb(a="home"))
    kb.adjust(1)
    return kb.as_markup()


def balance_kb(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_topup"), callback_data=MenuCb(a="topup"))
    kb.button(text=tr(lang, "btn_menu"), callback_data=MenuCb(a="home"))
    kb.adjust(1)
    return kb.as_markup()


def menu_only_kb(lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_menu"), callback_data=MenuCb(a="home"))
    return kb.as_markup()


def library_kb(lang: str, ids: Sequence[int], page: int, pages: int, first_number: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for n, gid in enumerate(ids, start=first_number):
        kb.button(text=str(n), callback_data=GenCb(a="show", g=gid))
    nav = 0
    if page > 0:
        kb.button(text="◀", callback_data=LibCb(p=page - 1))
        nav += 1
    if page + 1 < pages:
        kb.button(text="▶", callback_data=LibCb(p=page + 1))
        nav += 1
    kb.button(text=tr(lang, "btn_menu"), callback_data=MenuCb(a="home"))
    row = min(len(ids), 5) or 1
    kb.adjust(*([row] * ((len(ids) + row - 1) // row)), *([nav] if nav else []), 1)
    return kb.as_markup()


def lang_kb() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text="🇷🇺 Русский", callback_data=LangCb(l="ru"))
    kb.button(text="🇬🇧 English", callback_data=LangCb(l="en"))
    kb.adjust(2)
    return kb.as_markup()


def selftest_kb(models: Iterable[Any]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for spec in models:
        kb.button(text=f"🧪 {spec.name}", callback_data=SelfTestCb(m=spec.key))
    kb.adjust(1)
    return kb.as_markup()


def queued_kb(lang: str, generation_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_cancel"), callback_data=GenCb(a="x", g=generation_id))
    return kb.as_markup()


def result_kb(lang: str, generation_id: int, *, is_image: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr(lang, "btn_again"), callback_data=GenCb(a="again", g=generation_id))
    kb.button(text=tr(lang, "btn_original"), callback_data=GenCb(a="doc", g=generation_id))
    if is_image:
        kb.button(text=tr(lang, "btn_animate"), callback_data=GenCb(a="anim", g=generation_id))
    kb.adjust(2, 1)
    return kb.as_markup()
