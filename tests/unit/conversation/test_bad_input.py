"""Input that looks right but is not: a "picture" whose bytes are a program, prompts that are
control characters or nothing visible. Each is refused politely, in the user's language, at the
step it was given, and nothing is charged or stored."""

from __future__ import annotations

import pytest
from aiogram.methods import AnswerCallbackQuery, SendMessage

from bot.services.pipeline.context import SOURCE_MIME_KEY, SOURCE_PATH_KEY
from handlers.texts import tr
from kie_client.catalog import Job
from tests.unit.conversation.conftest import SIGNUP_BONUS, seedream_buttons, texts

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 4000  # a PE header
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
EDIT = "Seedream 4.5 Edit"


def _stored_files(harness) -> list[str]:
    root = harness.media.root
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def _to_edit_photo_step(harness, user, lang: str) -> None:
    b = seedream_buttons(lang)
    await harness.send(user, "/start")
    await harness.press(user, tr(lang, "job_edit_photo"))
    await harness.press(user, tr(lang, "model_button", name=EDIT, price=8))
    await harness.press(user, b["continue"])
    assert harness.screen(user).text == tr(lang, "ask_photo", name=EDIT, mb=10)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_program_sent_as_a_png_file_is_refused_and_nothing_is_charged(harness, lang):
    uid = 4101 if lang == "en" else 4102
    ann = harness.user(uid, language_code=lang)
    await _to_edit_photo_step(harness, ann, lang)
    await harness.feed(harness.updates.document(ann, EXE, mime_type="image/png",
                                                file_name="cat.png", caption="make it snowy"))
    # The declared type is fine, so the card comes; the bytes are only known at Generate.
    calls = await harness.press(ann, seedream_buttons(lang)["generate"])

    reason = tr(lang, "err_source", reason=tr(lang, "src_not_image"))
    assert texts([c for c in calls if isinstance(c, SendMessage)]) == [
        f"{reason}\n\n{tr(lang, 'ask_photo', name=EDIT, mb=10)}"]
    assert [c.text for c in calls if isinstance(c, AnswerCallbackQuery)] == [None]
    assert await harness.generations(uid) == []
    assert await harness.ledger(uid) == [("signup_bonus", SIGNUP_BONUS)]
    assert _stored_files(harness) == []
    assert harness.kicks == []

    # The photo question stands: a real picture goes through.
    await harness.feed(harness.updates.photo(ann, JPEG))
    await harness.press(ann, seedream_buttons(lang)["generate"])
    [row] = await harness.generations(uid)
    assert (row["status"], row["cost"]) == ("queued", 8)


async def test_a_picture_declared_as_another_type_is_stored_as_what_it_is(harness):
    ann = harness.user(4103)
    await _to_edit_photo_step(harness, ann, "en")
    await harness.feed(harness.updates.document(ann, JPEG, mime_type="image/png",
                                                file_name="cat.png", caption="make it snowy"))
    await harness.press(ann, seedream_buttons("en")["generate"])
    [row] = await harness.generations(4103)
    assert row["options"][SOURCE_MIME_KEY] == "image/jpeg"
    assert row["options"][SOURCE_PATH_KEY].endswith(".jpg")
    assert await harness.media.read(row["options"][SOURCE_PATH_KEY]) == JPEG


@pytest.mark.parametrize("lang", ["en", "ru"])
@pytest.mark.parametrize(("prompt", "key"), [
    ("\u200b\u200b\u200b", "err_prompt_invisible"),
    ("\u2060\ufeff \u200d", "err_prompt_invisible"),
    ("\u3164", "err_prompt_invisible"),  # a Hangul filler: a "letter" that shows nothing
    ("a lighthouse\x00 at dusk", "err_prompt_control"),
    ("a lighthouse\x1b[31m at dusk", "err_prompt_control"),
])
async def test_prompts_with_control_or_no_visible_characters_are_refused_at_the_prompt_step(
        harness, lang, prompt, key):
    uid = 4110 if lang == "en" else 4111
    ann = harness.user(uid, language_code=lang)
    b = seedream_buttons(lang)
    await harness.send(ann, "/start")
    for button in ("images", "model", "continue"):
        await harness.press(ann, b[button])
    ask = tr(lang, "ask_prompt", min=1, max=3000)
    assert texts(await harness.send(ann, prompt)) == [f"{tr(lang, key)}\n\n{ask}"]
    # Still at the prompt step: a proper prompt brings the card; nothing was queued or charged.
    await harness.send(ann, "a lighthouse at dusk\nsecond line\twith a tab")
    assert b["generate"] in [btn for row in harness.screen(ann).reply_markup.inline_keyboard
                             for btn in (x.text for x in row)]
    assert await harness.generations(uid) == []
    assert await harness.ledger(uid) == [("signup_bonus", SIGNUP_BONUS)]


async def test_an_invisible_prompt_typed_from_the_main_menu_is_refused_too(harness):
    ann = harness.user(4112)
    await harness.send(ann, "/start")
    replies = texts(await harness.send(ann, "\u200b"))
    # No model used yet: the first model of the create-an-image section is offered.
    first = harness.catalog.models(job=Job.CREATE_IMAGE, enabled_only=True)[0]
    assert len(replies) == 1 and replies[0].startswith(tr("en", "quick_offer", name=first.name))
    assert tr("en", "err_prompt_invisible") in replies[0]
    assert await harness.generations(4112) == []
