"""Screens of the generation flow: (text, keyboard) from the catalog, the draft and the language.

Each flow step renders through here so editing a message in place and sending a fresh one show
exactly the same thing.
"""

from __future__ import annotations

from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.services.prompt_helper import native_switch
from handlers import keyboards
from handlers.texts import count, tr
from kie_client.catalog import Catalog, Job, ModelSpec

Screen = tuple[str, InlineKeyboardMarkup]
PROMPT_IN_CARD = 700


def mode_text(lang: str, spec: ModelSpec) -> str:
    return tr(lang, f"mode_{spec.mode.value}")


def draft_job(spec: ModelSpec, draft: dict) -> Job:
    """The menu section a draft was started from (its model's own section by default)."""
    try:
        return Job(draft.get("job") or spec.section)
    except ValueError:
        return spec.section


async def last_model(state: FSMContext, job: Job) -> str | None:
    last = (await state.get_data()).get("last_by_job") or {}
    return last.get(job.value) if isinstance(last, dict) else None


async def free_model_for(generations: Any, user_id: int) -> str | None:
    """The daily free allowance's model while the user has a free generation left today."""
    key = generations.free_model()
    if key is None:  # the allowance is off: no database read
        return None
    return key if await generations.free_left(user_id) > 0 else None


def picker(lang: str, catalog: Catalog, job: Job, *, src: int = 0, last: str | None = None,
           free: str | None = None) -> Screen:
    """The models on sale for `job`, each with its one-line description and starting price; the
    one used last in this job first. With `src` (a result to animate): the animate-photo models
    that take one image. `free`: the model the user may use free today (marked)."""
    job = Job.ANIMATE_PHOTO if src else job
    models = list(catalog.models(job=job, enabled_only=True))
    if src:
        models = [m for m in models if m.image_input is not None and m.image_input.min_count == 1]
    if last is not None:
        models.sort(key=lambda m: m.key != last)  # stable: the rest keep the catalog's order
    title = "pick_animate" if src else f"pick_{job.value}"
    if not models:
        empty = keyboards.model_picker(lang, [], src=src, job=job)
        return tr(lang, title) + "\n\n" + tr(lang, "pick_none"), empty
    lines = []
    pairs = []
    for m in models:
        start = catalog.from_price(m.key)
        mark = " " + tr(lang, "pick_last") if m.key == last else ""
        if m.key == free:
            mark += " · " + tr(lang, "free_today")
        lines.append(tr(lang, "pick_line", name=m.name, about=m.blurb(lang), price=start) + mark)
        pairs.append((m, start))
    text = tr(lang, title) + "\n\n" + "\n".join(lines)
    return text, keyboards.model_picker(lang, pairs, src=src, job=job)


def audio_seconds(draft: dict) -> float | None:
    """The length of the draft's audio (talking photos), which per-second prices count."""
    audio = draft.get("audio")
    return audio.get("seconds") if isinstance(audio, dict) else None


def draft_price(catalog: Catalog, draft: dict) -> int:
    """What the Generate button shows and GenerationService.start charges for this draft
    (× its variants: N pictures of an image model)."""
    price = catalog.price(draft["model"], draft["opts"], audio_seconds=audio_seconds(draft))
    return price * variants_of(catalog.get(draft["model"]), draft)


def variants_of(spec: ModelSpec, draft: dict) -> int:
    """How many pictures the draft asks for: 1 unless its model offers variants."""
    n = draft.get("variants") or 1
    wanted = isinstance(n, int) and 1 <= n <= keyboards.MAX_VARIANTS
    return n if wanted and keyboards.offers_variants(spec) else 1


def options(lang: str, catalog: Catalog, draft: dict) -> Screen:
    spec = catalog.get(draft["model"])
    price = draft_price(catalog, draft)
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
    rule = spec.image_input
    text = tr(lang, "ask_photo", name=spec.name, mb=rule.max_bytes // (1024 * 1024) if rule else 10)
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


def card(lang: str, catalog: Catalog, draft: dict, balance: int, *, free: bool = False) -> Screen:
    """`free`: the user has today's free generation on this model (shown; never "short")."""
    spec = catalog.get(draft["model"])
    price = draft_price(catalog, draft)
    draft["price"] = price  # what Generate on this card may charge (GenerationService.start)
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
    if not spec.prompt:
        prompt = tr(lang, "card_no_prompt")
    text = tr(lang, "card", name=spec.name, options=keyboards.options_summary(lang, spec, draft["opts"]),
              prompt=prompt, photo=photo, balance=balance)
    # Today's free generation covers one picture: an order of several variants pays for all.
    free = (free or bool(draft.get("free"))) and variants_of(spec, draft) == 1
    short = balance < price and not free
    if free:
        text += "\n\n" + tr(lang, "free_card")
    if short:
        text += "\n\n" + tr(lang, "short_balance", cost=price, balance=balance, short=price - balance)
    kb = keyboards.card_kb(lang, draft["d"], price, short=short, prompt=spec.prompt)
    if keyboards.offers_variants(spec):
        kb = keyboards.with_variants(kb, lang, draft["d"], variants_of(spec, draft))
    # The prompt helper's row (issue 14): "helper" is its price, put in the draft with the prompt.
    return text, keyboards.with_assist_row(kb, lang, draft["d"], spec, draft["opts"],
                                           draft.get("helper"), native_switch(spec))


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
