"""CallbackData factories. Prefixes are one or two letters so every packed value stays far below
Telegram's 64-byte limit; option names and values travel as indices (values such as "16:9"
contain the ":" separator). Flow buttons carry the draft number `d`, so a button from an older
card is recognised as stale instead of acting on the current draft.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class MenuCb(CallbackData, prefix="m"):
    """Main menu sections: img, vid, bal, lib, help, home, topup."""

    a: str


class PickCb(CallbackData, prefix="p"):
    """Pick a model; `src` > 0 is the generation to animate (ownership checked on use)."""

    m: str
    src: int = 0


class OptCb(CallbackData, prefix="o"):
    """Option screens: `o` option index; `v` value index, or -1 to open the option's values."""

    d: int
    o: int
    v: int = -1


class FlowCb(CallbackData, prefix="f"):
    """Draft navigation: next, back, cancel, go (generate), opts, prompt, model."""

    d: int
    a: str


class GenCb(CallbackData, prefix="g"):
    """Actions on a stored generation: x cancel, again, doc, anim, show."""

    a: str
    g: int


class LibCb(CallbackData, prefix="l"):
    p: int


class PackCb(CallbackData, prefix="t"):
    """A top-up pack, named by its numbers so a changed configuration makes old buttons stale."""

    s: int
    c: int


class LangCb(CallbackData, prefix="lg"):
    l: str  # noqa: E741 - short on purpose, it is wire format


class SelfTestCb(CallbackData, prefix="st"):
    m: str
