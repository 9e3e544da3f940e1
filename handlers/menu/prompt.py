"""Photo, album, audio and prompt input. Every wrong input gets its reason and the same
question again.

An album (several photos sharing media_group_id, each its own update) is collected into the
draft up to the model's ImageInputRule.max_count and answered once, when its messages stop
coming (handlers/albums.py). A model whose pictures are optional (min_count 0) asks only for
the prompt and takes a photo or an album when one is sent: one menu entry, text and image
modes. A voice message or audio file fills the model's audio input (AudioInputRule).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.services.accounts import AccountService
from bot.services.generation import GenerationService
from bot.services.prompt_helper import PromptHelper
from handlers import draft as drafts
from handlers import prompt_helper as helper
from handlers import screens
from handlers.albums import AlbumCollector
from handlers.errors import StaleMenu
from handlers.callbacks import FlowAction, FlowCb
from handlers.failures import prompt_text
from handlers.states import Draft
from handlers.filters import Magic
from handlers.texts import count, decimal, tr
from kie_client.catalog import Catalog, InvalidPromptError, Job, Kind, ModelSpec

_DEFAULT_MIMES = ("image/jpeg", "image/png", "image/webp")
_DEFAULT_MAX = 10 * 1024 * 1024


def photo_of(message: Message, spec: ModelSpec, lang: str) -> tuple[dict | None, str | None]:
    """(photo record, None) for a usable image, or (None, error text) explaining why not."""
    rule = spec.image_input
    mimes = tuple(rule.mime_types) if rule is not None else _DEFAULT_MIMES
    limit = int(rule.max_bytes) if rule is not None else _DEFAULT_MAX
    if message.photo:
        best = message.photo[-1]
        record = {"file_id": best.file_id, "mime": "image/jpeg", "name": "photo.jpg",
                  "size": best.file_size or 0}
    elif message.document is not None:
        doc = message.document
        mime = (doc.mime_type or "").lower()
        if mime not in mimes:
            return None, tr(lang, "err_file_type", mime=mime or "?")
        ext = mime.split("/")[1].replace("jpeg", "jpg")
        record = {"file_id": doc.file_id, "mime": mime, "name": doc.file_name or f"image.{ext}",
                  "size": doc.file_size or 0}
    elif message.sticker is not None:
        return None, tr(lang, "err_sticker")
    elif message.video or message.animation or message.video_note:
        return None, tr(lang, "err_video")
    else:
        return None, tr(lang, "err_expect_photo")
    if record["size"] > limit:
        return None, tr(lang, "err_file_big", size=decimal(lang, record["size"] / (1024 * 1024)),
                        limit=limit // (1024 * 1024))
    return record, None


def audio_of(message: Message, spec: ModelSpec, lang: str) -> tuple[dict | None, str | None]:
    """(audio record, None) for a usable voice message or audio file, or (None, why not)."""
    rule = spec.audio_input
    if message.voice is not None:
        v = message.voice
        record = {"file_id": v.file_id, "mime": (v.mime_type or "audio/ogg").lower(),
                  "name": "voice.ogg", "size": v.file_size or 0, "seconds": v.duration}
    elif message.audio is not None:
        a = message.audio
        record = {"file_id": a.file_id, "mime": (a.mime_type or "audio/mpeg").lower(),
                  "name": a.file_name or "audio.mp3", "size": a.file_size or 0,
                  "seconds": a.duration}
    elif message.document is not None and (message.document.mime_type or "").startswith("audio/"):
        doc = message.document
        record = {"file_id": doc.file_id, "mime": doc.mime_type.lower(),
                  "name": doc.file_name or "audio", "size": doc.file_size or 0}
    else:
        return None, tr(lang, "err_expect_audio")
    if rule is not None and record["mime"] not in rule.mime_types:
        return None, tr(lang, "err_audio_type", mime=record["mime"])
    limit = rule.max_bytes if rule is not None else _DEFAULT_MAX
    if record["size"] > limit:
        return None, tr(lang, "err_audio_big", size=decimal(lang, record["size"] / (1024 * 1024)),
                        limit=limit // (1024 * 1024))
    # Telegram's duration of a voice message or audio file (a document's is unknown: priced at
    # the longest the model takes). The video is as long as the recording.
    seconds = record.get("seconds")
    if rule is not None and seconds is not None and seconds > rule.max_seconds:
        return None, tr(lang, "err_audio_long", seconds=seconds, max=rule.max_seconds)
    return record, None


def is_audio(message: Message) -> bool:
    doc = message.document
    return (message.voice is not None or message.audio is not None
            or (doc is not None and (doc.mime_type or "").startswith("audio/")))


async def show_card(message: Message, state: FSMContext, draft: dict, lang: str, catalog: Catalog,
                    accounts: AccountService, *, note: str | None = None) -> None:
    await state.set_state(Draft.confirm)
    text, kb = screens.card(lang, catalog, draft, await accounts.balance(message.from_user.id))
    sent = await message.answer(f"{note}\n\n{text}" if note else text, reply_markup=kb)
    draft["screen"] = sent.message_id
    await drafts.save(state, draft)


async def take_prompt(message: Message, state: FSMContext, draft: dict, text: str, lang: str,
                      catalog: Catalog, accounts: AccountService, *, note: str | None = None) -> None:
    """Validate `text` as the draft's prompt; then the photo (if still missing) or the card."""
    spec = catalog.get(draft["model"])
    try:
        draft["prompt"] = catalog.validate_prompt(spec.key, text)
    except InvalidPromptError as exc:
        await state.set_state(Draft.prompt)
        error = prompt_text(lang, exc)
        screen = screens.ask_prompt(lang, catalog, draft, error=f"{note}\n\n{error}" if note else error)
        await message.answer(screen[0], reply_markup=screen[1])
        return
    await after_inputs(message, state, draft, lang, catalog, accounts, note=note)


async def after_inputs(message: Message, state: FSMContext, draft: dict, lang: str,
                       catalog: Catalog, accounts: AccountService, *,
                       note: str | None = None) -> None:
    """With the prompt in the draft: ask for what is still missing (photo, audio), else the card."""
    spec = catalog.get(draft["model"])
    if drafts.needs_photo(spec, draft):
        await drafts.save(state, draft)
        await state.set_state(Draft.photo)
        text_, kb = screens.ask_photo(lang, catalog, draft, error=note)
        await message.answer(text_, reply_markup=kb)
        return
    if drafts.needs_audio(spec, draft):
        await drafts.save(state, draft)
        await state.set_state(Draft.audio)
        text_, kb = screens.ask_audio(lang, catalog, draft, error=note)
        await message.answer(text_, reply_markup=kb)
        return
    await show_card(message, state, draft, lang, catalog, accounts, note=note)


async def photo_step(message: Message, state: FSMContext, lang: str, catalog: Catalog,
                     accounts: AccountService, albums: AlbumCollector,
                     prompt_helper: PromptHelper | None = None) -> None:
    """The photo question's answer (or a photo sent with the prompt or at the card, for a model
    that takes pictures); a caption counts as the prompt. An album goes to `album_item`."""
    draft = await drafts.current(state)
    helper.offer(draft, prompt_helper)
    spec = catalog.get(draft["model"])
    if spec.audio_input is not None and is_audio(message):
        await audio_step(message, state, lang, catalog, accounts)
        return
    if spec.image_input is None:  # not for this model: the handlers after this one answer
        raise SkipHandler()
    record, error = photo_of(message, spec, lang)
    if record is None:
        text, kb = screens.ask_photo(lang, catalog, draft, error=error)
        await message.answer(text, reply_markup=kb)
        return
    if message.media_group_id:
        await album_item(message, state, draft, record, lang, catalog, accounts, albums)
        return
    draft["photo"] = record
    draft["photos"], draft["group"] = None, None
    await drafts.save(state, draft)
    caption = (message.caption or "").strip()
    await inputs_received(message, state, draft, caption, tr(lang, "photo_received"), lang,
                          catalog, accounts)


async def inputs_received(message: Message, state: FSMContext, draft: dict, caption: str,
                          received: str, lang: str, catalog: Catalog,
                          accounts: AccountService) -> None:
    """Photos or audio are in the draft: the caption as the prompt, else the next question (a
    tool takes no prompt: straight to what is still missing, then the card)."""
    spec = catalog.get(draft["model"])
    if caption and spec.prompt:
        await take_prompt(message, state, draft, caption, lang, catalog, accounts)
    elif draft.get("prompt") or not spec.prompt:
        await after_inputs(message, state, draft, lang, catalog, accounts)
    else:
        await state.set_state(Draft.prompt)
        text, kb = screens.ask_prompt(lang, catalog, draft)
        await message.answer(received + "\n" + text, reply_markup=kb)


async def album_item(message: Message, state: FSMContext, draft: dict, record: dict, lang: str,
                     catalog: Catalog, accounts: AccountService, albums: AlbumCollector) -> None:
    """One photo of an album: into the draft (up to the model's limit); the reply comes once
    the group's messages stop coming."""
    spec = catalog.get(draft["model"])
    group = message.media_group_id
    if draft.get("group") != group:  # a new album replaces what was collected before
        draft.update(group=group, photos=[], photo=None, dropped=0, caption=None)
    if len(draft["photos"]) < spec.image_input.max_count:
        draft["photos"].append(record)
        draft["photo"] = draft["photos"][0]
    else:
        draft["dropped"] = int(draft.get("dropped") or 0) + 1
    caption = (message.caption or "").strip()
    if caption and not draft.get("caption"):  # Telegram puts an album's caption on one photo
        draft["caption"] = caption
    await drafts.save(state, draft)

    async def done() -> None:
        await album_done(message, state, group, lang, catalog, accounts)

    albums.note(f"{message.chat.id}:{group}", done)


async def album_done(message: Message, state: FSMContext, group: str, lang: str,
                     catalog: Catalog, accounts: AccountService) -> None:
    try:
        draft = await drafts.current(state)
    except StaleMenu:
        return  # the draft was cancelled meanwhile
    if draft.get("group") != group or not draft.get("photos"):
        return
    spec = catalog.get(draft["model"])
    received = tr(lang, "album_received", n=len(draft["photos"]))
    if draft.get("dropped"):
        limit = spec.image_input.max_count
        received += "\n" + tr(lang, "album_too_many", name=spec.name, max=limit,
                               photos=count(lang, limit, "photo"))
    caption = draft.pop("caption", None) or ""
    await drafts.save(state, draft)
    if caption:
        await take_prompt(message, state, draft, caption, lang, catalog, accounts, note=received)
    elif draft.get("prompt"):
        await after_inputs(message, state, draft, lang, catalog, accounts, note=received)
    else:
        await inputs_received(message, state, draft, "", received, lang, catalog, accounts)


async def audio_step(message: Message, state: FSMContext, lang: str, catalog: Catalog,
                     accounts: AccountService) -> None:
    """A voice message or audio file for the model's audio input; a caption is the prompt."""
    draft = await drafts.current(state)
    spec = catalog.get(draft["model"])
    record, error = audio_of(message, spec, lang)
    if record is None or spec.audio_input is None:
        text, kb = screens.ask_audio(lang, catalog, draft, error=error)
        await message.answer(text, reply_markup=kb)
        return
    draft["audio"] = record
    await drafts.save(state, draft)
    caption = (message.caption or "").strip()
    await inputs_received(message, state, draft, caption, tr(lang, "audio_received"), lang,
                          catalog, accounts)


async def typed_prompt(message: Message, state: FSMContext, lang: str, catalog: Catalog,
                       accounts: AccountService, prompt_helper: PromptHelper | None = None) -> None:
    """Text while a draft is open: the prompt (asked for, or a new one on the options or card)."""
    draft = await drafts.current(state)
    helper.offer(draft, prompt_helper)
    await take_prompt(message, state, draft, message.text, lang, catalog, accounts)


async def prompt_not_text(message: Message, state: FSMContext, lang: str, catalog: Catalog) -> None:
    draft = await drafts.current(state)
    text, kb = screens.ask_prompt(lang, catalog, draft, error=tr(lang, "err_expect_text"))
    await message.answer(text, reply_markup=kb)


async def edit_prompt(query: CallbackQuery, callback_data: FlowCb, state: FSMContext, lang: str,
                      catalog: Catalog) -> None:
    draft = await drafts.current(state, callback_data.draft)
    await query.answer()
    await state.set_state(Draft.prompt)
    spec = catalog.get(draft["model"])
    await screens.show(query, tr(lang, "prompt_again", min=spec.prompt_min, max=spec.prompt_max),
                       screens.ask_prompt(lang, catalog, draft)[1])


def _first_image_model(catalog: Catalog) -> ModelSpec:
    """The first model of the create-an-image menu (on sale) for a prompt typed from the menu."""
    on_sale = catalog.models(job=Job.CREATE_IMAGE, enabled_only=True) or catalog.models(Kind.IMAGE)
    return on_sale[0]


async def quick_prompt(message: Message, state: FSMContext, lang: str, catalog: Catalog,
                       accounts: AccountService, generations: GenerationService,
                       prompt_helper: PromptHelper | None = None) -> None:
    """A prompt typed from the main menu: offer the last used model with its options."""
    data = await state.get_data()
    model, opts = data.get("last_model"), data.get("last_opts")
    if not model:
        recent, _ = await generations.library(user_id=message.from_user.id, page=0, page_size=1)
        if recent:
            model, opts = recent[0].model_key, recent[0].options
    try:
        spec = catalog.get(model) if model else _first_image_model(catalog)
        if not catalog.sellable(spec.key) or not spec.prompt:
            raise LookupError(spec.key)  # switched off, or a tool that takes no prompt
        opts = catalog.normalise_options(
            spec.key, {k: v for k, v in (opts or {}).items() if spec.option(k) is not None})
    except Exception:  # noqa: BLE001 - an old model or option no longer offered: use defaults
        spec = _first_image_model(catalog)
        opts = catalog.defaults(spec.key)
    draft = await drafts.new_draft(state, model=spec.key, opts=opts)
    helper.offer(draft, prompt_helper)
    await take_prompt(message, state, draft, message.text, lang, catalog, accounts,
                      note=tr(lang, "quick_offer", name=spec.name))


def router() -> Router:
    r = Router(name="prompt")
    not_a_command = Magic(~F.text.startswith("/"))
    r.message.register(photo_step, Draft.photo, not_a_command)
    r.message.register(audio_step, Draft.audio, not_a_command)
    # A photo, album or recording sent instead of (or after) the prompt, for a model taking it.
    media = F.photo | F.document | F.voice | F.audio
    r.message.register(photo_step, StateFilter(Draft.prompt, Draft.confirm), media)
    r.message.register(typed_prompt, StateFilter(Draft.prompt, Draft.options, Draft.confirm),
                       Magic(F.text), not_a_command)
    r.message.register(prompt_not_text, Draft.prompt, Magic(~F.text))
    r.callback_query.register(edit_prompt, FlowCb.filter(F.action == FlowAction.PROMPT))
    r.message.register(quick_prompt, StateFilter(None), Magic(F.text), not_a_command)
    return r
