"""The generation draft kept in FSM data, so it survives restarts with RedisStorage.

A draft holds "photo" (the first or only photo), "photos" (an album's photos, in order, up to the
model's limit) with "group" (its media_group_id) and "audio" (a voice message or audio file).
FSM data keys: "seq" (last draft number), "draft" (the current draft as a JSON-safe dict),
"last_model"/"last_opts" (what the user generated with last), "last_by_job" ({job: model key}, the
model last picked in each menu section), "start_payload" (deep link). A draft also keeps "job" (its
section) and "price" (what its card showed: Generate charges exactly that, or nothing).
A button carries its draft number; a different number means the button is from an older card.
"""

from __future__ import annotations

from aiogram.fsm.context import FSMContext

from handlers.errors import StaleMenu
from kie_client.catalog import ModelSpec


async def new_draft(
    state: FSMContext, *, model: str, opts: dict, prompt: str | None = None,
    photo: dict | None = None, src: int = 0, screen: int | None = None,
) -> dict:
    data = await state.get_data()
    d = int(data.get("seq", 0)) + 1
    draft = {"d": d, "model": model, "opts": opts, "prompt": prompt, "photo": photo, "src": src,
             "screen": screen}
    await state.update_data(seq=d, draft=draft)
    return draft


async def current(state: FSMContext, d: int | None = None) -> dict:
    """The current draft; StaleMenu when there is none or `d` names an older one."""
    draft = (await state.get_data()).get("draft")
    if not isinstance(draft, dict) or (d is not None and draft.get("d") != d):
        raise StaleMenu()
    return draft


async def save(state: FSMContext, draft: dict) -> None:
    await state.update_data(draft=draft)


async def drop(state: FSMContext) -> None:
    await state.set_state(None)
    await state.update_data(draft=None)


def needs_photo(spec: ModelSpec, draft: dict) -> bool:
    """A photo is still missing. A model whose pictures are optional (min_count 0: one menu
    entry for text and image modes) never asks; it takes them when given."""
    rule = spec.image_input
    return (rule is not None and rule.min_count > 0 and not draft.get("photo")
            and not draft.get("src"))


def needs_audio(spec: ModelSpec, draft: dict) -> bool:
    rule = spec.audio_input
    return rule is not None and rule.min_count > 0 and not draft.get("audio")


def photos(draft: dict) -> list[dict]:
    """The draft's photos in the order sent: an album's, or the single one."""
    return list(draft.get("photos") or ([draft["photo"]] if draft.get("photo") else []))
