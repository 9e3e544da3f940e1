"""Wrong input at the prompt and photo steps gets its reason and the same question again; a good
photo is downloaded from Telegram once and stored with the queued generation."""

from __future__ import annotations

from aiogram.methods import GetFile, SendMessage

from bot.services.pipeline.context import SOURCE_PATH_KEY
from handlers.texts import count, tr
from testkit.mocked_bot import button_rows
from tests.unit.conversation.conftest import SIGNUP_BONUS, seedream_buttons, texts

B = seedream_buttons("en")
STEP_ROWS = [[tr("en", "btn_back"), tr("en", "btn_cancel")]]
ASK_PROMPT = tr("en", "ask_prompt", min=1, max=3000)
ASK_PHOTO = tr("en", "ask_photo", name="Seedream 4.5 Edit", mb=10)
CARD_HEADING = tr("en", "card", name="", options="", prompt="", photo="", balance=0).partition(
    "\n")[0]
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


async def test_a_too_long_prompt_gets_its_reason_and_the_same_question(harness):
    ann = harness.user(4001)
    await harness.send(ann, "/start")
    for button in ("images", "model", "continue"):
        await harness.press(ann, B[button])
    assert harness.screen(ann).text == ASK_PROMPT

    calls = await harness.send(ann, "x" * 3001)
    assert [type(c) for c in calls] == [SendMessage]
    too_long = tr("en", "err_prompt_long", length=count("en", 3001, "char"), max=3000)
    assert texts(calls) == [f"{too_long}\n\n{ASK_PROMPT}"]
    assert button_rows(calls[0].reply_markup) == STEP_ROWS

    calls = await harness.feed(harness.updates.sticker(ann))
    assert texts(calls) == [tr("en", "err_expect_text") + "\n\n" + ASK_PROMPT]

    await harness.send(ann, "x" * 3000)  # the limit itself is fine: the card follows
    assert harness.screen(ann).text.startswith(CARD_HEADING)
    assert button_rows(harness.screen(ann).reply_markup)[0] == [B["generate"]]
    assert await harness.generations(4001) == []


async def test_the_photo_step_refuses_text_and_stickers_then_takes_a_photo(harness):
    ann = harness.user(4002)
    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_edit_photo"))
    await harness.press(ann, tr("en", "model_button", name="Seedream 4.5 Edit", price=8))
    await harness.press(ann, B["continue"])
    assert harness.screen(ann).text == ASK_PHOTO
    assert button_rows(harness.screen(ann).reply_markup) == STEP_ROWS

    calls = await harness.send(ann, "make it snowy")
    assert texts(calls) == [tr("en", "err_expect_photo") + "\n\n" + ASK_PHOTO]
    assert button_rows(calls[0].reply_markup) == STEP_ROWS
    calls = await harness.feed(harness.updates.sticker(ann))
    assert texts(calls) == [tr("en", "err_sticker") + "\n\n" + ASK_PHOTO]
    assert harness.bot.session.calls_of(GetFile) == []

    await harness.feed(harness.updates.photo(ann, JPEG, caption="make it snowy"))
    card = harness.screen(ann)
    assert card.text == tr("en", "card", name="Seedream 4.5 Edit",
                           options="Aspect ratio: 1:1 · Quality: standard (2K)",
                           prompt="make it snowy", photo=tr("en", "card_photo"),
                           balance=SIGNUP_BONUS)

    await harness.press(ann, B["generate"])
    assert len(harness.bot.session.calls_of(GetFile)) == 1
    assert len(harness.bot.session.downloads) == 1
    [row] = await harness.generations(4002)
    assert (row["status"], row["model_key"], row["cost"]) == ("queued", "seedream_45_edit", 8)
    assert await harness.media.read(row["options"][SOURCE_PATH_KEY]) == JPEG
    assert await harness.ledger(4002) == [("signup_bonus", SIGNUP_BONUS), ("spend", -8)]
