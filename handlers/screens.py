"""Screens of the generation flow: (text, keyboard) from the catalog, the draft and the language.

Each flow step renders through here so editing a message in place and sending a fresh one show
exactly the same thing.
"""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from handlers import keyboards
from handlers.texts import count, tr
from kie_client.catalog import Catalog, Kind, Mode, ModelSpec

Screen = tuple[str, InlineKeyboardMarkup]
PROMPT_IN_CARD = 700


def mode_text(lang: str, spec: ModelSpec) -> str:
    return tr(lang, f"mode_{spec.mode.value}")


def picker(lang: str, catalog: Catalog, kind: Kind, *, src: int = 0) -> Screen:
    """The models of `kind`; with `src` (a result to animate) the image-to-video models."""
    if src:
        models = [m for m in catalog.models() if m.mode is Mode.I2V]
        title = "pick_animate"
    else:
        models = list(catalog.models(kind))
        title = "pick_image" if kind is Kind.IMAGE else "pick_video"
    pairs = [(m, catalog.price(m.key, catalog.defaults(m.key))) for m in models]
    return tr(lang, title), keyboards.model_picker(lang, pairs, src=src)


def options(lang: str, catalog: Catalog, draft: dict) -> Screen:
    spec = catalog.get(draft["model"])
    price = catalog.price(spec.key, draft["opts"])
    text = tr(lang, "options_screen", name=spec.name, mode=mode_text(lang, spec),
              summary=keyboards.options_summary(lang, spec, draft["opts"]), price=price)
    return text, keyboards.options_kb(lang, draft["d"], spec, draft["opts"], price)


def option_values(lang: str, catalog: Catalog, draft: dict, index: int) -> Screen:
    spec = catalog.get(draft["model"])
    option = spec.options[index]
    text = tr(lang, "option_values", name=spec.name, label=keyboards.option_label(lang, option))
    current = draft["opts"].get(option.name, option.default)
    return text, keyboards.option_values_kb(lang, draft["d"], index, option, current)


def ask_photo(lang: str, catalog: Catalog, draft: dict, *, error: str | None = None) -> Screen:
    spec = catalog.get(draft["model"])
    text = tr(lang, "ask_photo", name=spec.name)
    return (f"{error}\n\n{text}" if error else text), keyboards.step_kb(lang, draft["d"])


def ask_prompt(lang: str, catalog: Catalog, draft: dict, *, error: str | None = None) -> Screen:
    spec = catalog.get(draft["model"])
    rule = spec.image_input
    if rule is not None and rule.min_count == 0 and not draft.get("photo"):
        # One entry for text and image modes: pictures are taken when given.
        text = tr(lang, "ask_prompt_images", min=spec.prompt_min, max=spec.prompt_max,
                  photos=count(lang, rule.max_count, "photo"))
    else:
        text = tr(lang, "ask_prompt", min=spec.prompt_min, max=spec.prompt_max)
    return (f"{error}\n\n{text}" if error else text), keyboards.step_kb(lang, draft["d"])


def ask_audio(lang: str, catalog: Catalog, draft: dict, *, error: str | None = None) -> Screen:
    spec = catalog.get(draft["model"])
    rule = spec.audio_input
    limit = (rule.max_bytes if rule is not None else 10 * 1024 * 1024) // (1024 * 1024)
    text = tr(lang, "ask_audio", name=spec.name, limit=limit)
    return (f"{error}\n\n{text}" if error else text), keyboards.step_kb(lang, draft["d"])


def card(lang: str, catalog: Catalog, draft: dict, balance: int) -> Screen:
    spec = catalog.get(draft["model"])
    price = catalog.price(spec.key, draft["opts"])
    prompt = draft.get("prompt") or ""
    if len(prompt) > PROMPT_IN_CARD:
        prompt = prompt[: PROMPT_IN_CARD - 1] + "…"
    photo = ""
    if draft.get("src"):  # the same precedence as the Generate button
        photo = tr(lang, "card_source", id=draft["src"])
    elif len(draft.get("photos") or ()) > 1:
        photo = tr(lang, "card_photos", n=len(draft["photos"]))
    elif draft.get("photo"):
        photo = tr(lang, "card_photo")
    if draft.get("audio"):
        photo += tr(lang, "card_audio")
    text = tr(lang, "card", name=spec.name, options=keyboards.options_summary(lang, spec, draft["opts"]),
              prompt=prompt, photo=photo, balance=balance)
    short = balance < price
    if short:
        text += "\n\n" + tr(lang, "short_balance", cost=price, balance=balance, short=price - balance)
    return text, keyboards.card_kb(lang, draft["d"], price, short=short)


def main_menu(lang: str, balance: int) -> Screen:
    return tr(lang, "main_menu", balance=balance), keyboards.main_menu(lang)


async def show(query: CallbackQuery, text: str,
               markup: InlineKeyboardMarkup | None = None) -> int | None:
    """Edit the button's message in place; send a new one when it can't be edited (a media
    message, or one too old). Returns the id of the message now showing the screen."""
    message = query.message
    if isinstance(message, Message) and message.text is not None:
        try:
            await message.edit_text(text, reply_markup=markup)
            return message.message_id
        except TelegramBadRequest as exc:
            if "not modified" in str(exc):
                return message.message_id
    sent = await query.bot.send_message(query.from_user.id, text, reply_markup=markup)
    return sent.message_id
