"""Photo and prompt input. Every wrong input gets its reason and the same question again."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.services.accounts import AccountService
from bot.services.generation import GenerationService
from handlers import draft as drafts
from handlers import screens
from handlers.callbacks import FlowAction, FlowCb
from handlers.failures import prompt_text
from handlers.states import Draft
from handlers.texts import decimal, tr
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
    if drafts.needs_photo(spec, draft):
        await drafts.save(state, draft)
        await state.set_state(Draft.photo)
        text_, kb = screens.ask_photo(lang, catalog, draft, error=note)
        await message.answer(text_, reply_markup=kb)
        return
    await show_card(message, state, draft, lang, catalog, accounts, note=note)


async def photo_step(message: Message, state: FSMContext, lang: str, catalog: Catalog,
                     accounts: AccountService) -> None:
    """The photo question's answer; a caption counts as the prompt."""
    draft = await drafts.current(state)
    spec = catalog.get(draft["model"])
    record, error = photo_of(message, spec, lang)
    if record is None:
        text, kb = screens.ask_photo(lang, catalog, draft, error=error)
        await message.answer(text, reply_markup=kb)
        return
    draft["photo"] = record
    await drafts.save(state, draft)
    caption = (message.caption or "").strip()
    if caption:
        await take_prompt(message, state, draft, caption, lang, catalog, accounts)
    elif draft.get("prompt") or not spec.prompt:  # a tool takes no prompt: straight to the card
        await show_card(message, state, draft, lang, catalog, accounts)
    else:
        await state.set_state(Draft.prompt)
        text, kb = screens.ask_prompt(lang, catalog, draft)
        await message.answer(tr(lang, "photo_received") + "\n" + text, reply_markup=kb)


async def typed_prompt(message: Message, state: FSMContext, lang: str, catalog: Catalog,
                       accounts: AccountService) -> None:
    """Text while a draft is open: the prompt (asked for, or a new one on the options or card)."""
    draft = await drafts.current(state)
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
                       accounts: AccountService, generations: GenerationService) -> None:
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
    await take_prompt(message, state, draft, message.text, lang, catalog, accounts,
                      note=tr(lang, "quick_offer", name=spec.name))


def router() -> Router:
    r = Router(name="prompt")
    not_a_command = ~F.text.startswith("/")
    r.message.register(photo_step, Draft.photo, not_a_command)
    r.message.register(typed_prompt, StateFilter(Draft.prompt, Draft.options, Draft.confirm),
                       F.text, not_a_command)
    r.message.register(prompt_not_text, Draft.prompt, ~F.text)
    r.callback_query.register(edit_prompt, FlowCb.filter(F.action == FlowAction.PROMPT))
    r.message.register(quick_prompt, StateFilter(None), F.text, not_a_command)
    return r
