"""The image flow up to a queued generation: screens, the single charge, short balance, cancel."""

from __future__ import annotations

from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage

from handlers import build_presenter
from handlers.texts import tr
from testkit.mocked_bot import button_rows
from tests.unit.conversation.conftest import (
    ADMIN_ID,
    SIGNUP_BONUS,
    answer_of,
    seedream_buttons,
    texts,
    to_card,
)

B = seedream_buttons("en")
# An image model's card offers 1–4 variants (handlers/followups.py) under Generate.
CARD_ROWS = [[B["generate"]], ["✅ Variants: 1", "2", "3", "4"],
             [tr("en", "btn_edit_options"), tr("en", "btn_edit_prompt")],
             [tr("en", "btn_other_model"), tr("en", "btn_cancel")]]


def card_text(prompt: str, balance: int) -> str:
    return tr("en", "card", name="Seedream 4.5",
              options="Aspect ratio: 16:9 · Quality: standard (2K)", prompt=prompt, photo="",
              balance=balance)


async def test_every_screen_of_the_image_flow_is_one_message_edited_in_place(harness):
    ann = harness.user(2001)
    await harness.send(ann, "/start")
    menu = harness.screen(ann)

    calls = await harness.press(ann, B["images"])
    assert isinstance(calls[0], AnswerCallbackQuery) and calls[0].text is None
    picker = harness.screen(ann)
    assert picker.message_id == menu.message_id
    assert picker.text.startswith(tr("en", "pick_create_image") + "\n\n")
    assert tr("en", "pick_line", name="Seedream 4.5", about="Photoreal pictures with sharp detail",
              price=8) in picker.text.splitlines()
    assert button_rows(picker.reply_markup) == [
        [tr("en", "model_button", name="Nano Banana 2", price=8)],
        [tr("en", "model_button", name="Nano Banana Pro", price=18)],
        [tr("en", "model_button", name="Seedream 5.0 Lite", price=6)],
        [tr("en", "model_button", name="Seedream 4.5", price=8)],
        [tr("en", "model_button", name="GPT Image 2", price=6)],
        [tr("en", "model_button", name="FLUX.2 Pro", price=12)],
        [tr("en", "btn_back")]]

    await harness.press(ann, B["model"])
    assert harness.screen(ann).text == tr(
        "en", "options_screen", name="Seedream 4.5", mode=tr("en", "mode_t2i"),
        summary="Aspect ratio: 1:1 · Quality: standard (2K)", price=8)
    await harness.press(ann, B["aspect"])
    values = harness.screen(ann)
    assert values.text == tr("en", "option_values", name="Seedream 4.5", label="Aspect ratio")
    assert button_rows(values.reply_markup)[0] == ["✅ 1:1", "4:3", "3:4"]
    await harness.press(ann, "16:9")
    assert "Aspect ratio: 16:9 · Quality: standard (2K)" in harness.screen(ann).text
    await harness.press(ann, B["continue"])
    question = harness.screen(ann)
    assert question.message_id == menu.message_id
    assert question.text == tr("en", "ask_prompt", min=1, max=3000)
    assert button_rows(question.reply_markup) == [[tr("en", "btn_back"), tr("en", "btn_cancel")]]

    calls = await harness.send(ann, "A lighthouse on a cliff at dusk")
    assert [type(c) for c in calls] == [SendMessage]
    card = harness.screen(ann)
    assert card.text == card_text("A lighthouse on a cliff at dusk", SIGNUP_BONUS)
    assert button_rows(card.reply_markup) == CARD_ROWS
    assert await harness.generations(2001) == []  # nothing is charged before Generate


async def test_generate_charges_once_however_often_the_button_is_pressed(harness):
    ann = harness.user(2002)
    card = await to_card(harness, ann, "a fox in the snow")

    first = await harness.press(ann, B["generate"], message=card)
    second = await harness.press(ann, B["generate"], message=card)  # the same tap, twice

    assert answer_of(first).text is None
    assert answer_of(second).text == tr("en", "already_started")
    [row] = await harness.generations(2002)
    assert (row["status"], row["model_key"], row["cost"]) == ("queued", "seedream_45_t2i", 8)
    assert row["prompt"] == "a fox in the snow" and "prompt" not in row["options"]
    assert row["options"]["aspect_ratio"] == "16:9"
    assert row["request_key"] == f"2002:{card.message_id}"
    assert await harness.ledger(2002) == [("signup_bonus", SIGNUP_BONUS), ("spend", -8)]
    assert harness.kicks == ["submit"]  # the submitter is woken once, for one row

    # The card became the status card, with Cancel while it waits in line.
    status = harness.screen(ann)
    assert status.message_id == card.message_id
    generation = await harness.repository.get_generation(row["id"])
    expected = build_presenter().status(generation, language="en", position=1, elapsed_s=0.0)
    assert status.text == expected.text
    assert button_rows(status.reply_markup) == [[tr("en", "btn_cancel")]]
    assert [type(c) for c in second] == [AnswerCallbackQuery]  # no second card, no edit


async def test_short_balance_shows_the_shortfall_and_a_top_up_button(harness):
    ann = harness.user(2003)
    await harness.send(ann, "/start")
    await harness.repository.admin_set(2003, 5, admin_id=ADMIN_ID, note="test")
    card = await to_card(harness, ann, "a red balloon")

    short = tr("en", "short_balance", cost=8, balance=5, short=3)
    assert card.text == card_text("a red balloon", 5) + "\n\n" + short
    assert button_rows(card.reply_markup) == [CARD_ROWS[0], [tr("en", "btn_topup")], *CARD_ROWS[1:]]

    calls = await harness.press(ann, B["generate"])
    assert answer_of(calls).text == short
    assert harness.screen(ann).text == card.text  # the same card stays, Generate still there
    assert await harness.generations(2003) == []
    assert harness.kicks == []

    calls = await harness.press(ann, tr("en", "btn_topup"))
    [sent] = [c for c in calls if isinstance(c, SendMessage)]
    assert sent.text == tr("en", "topup_choose")
    assert button_rows(sent.reply_markup) == [
        [tr("en", "pack_button", stars=50, credits=50)],
        [tr("en", "pack_button", stars=150, credits=165)],
        [tr("en", "pack_button", stars=500, credits=600)],
        [tr("en", "btn_menu")]]
    assert harness.screen(ann).text == tr("en", "topup_choose")
    assert card.message_id in {m.message_id for m in harness.bot.session.shown(2003)}


async def test_cancel_while_queued_refunds_once(harness):
    ann = harness.user(2004)
    card = await to_card(harness, ann, "a quiet harbour")
    await harness.press(ann, B["generate"], message=card)
    status = harness.screen(ann)

    calls = await harness.press(ann, tr("en", "btn_cancel"), message=status)
    assert answer_of(calls).text is None
    assert texts([c for c in calls if isinstance(c, EditMessageText)]) == [
        tr("en", "cancel_done", cost=8)]
    again = await harness.press(ann, tr("en", "btn_cancel"), message=status)  # the old button
    assert answer_of(again).text == tr("en", "cancel_late") and answer_of(again).show_alert

    [row] = await harness.generations(2004)
    assert (row["status"], row["error"]) == ("failed", "cancelled")
    assert await harness.ledger(2004) == [
        ("signup_bonus", SIGNUP_BONUS), ("spend", -8), ("refund", 8)]
    assert await harness.repository.ledger_check() == []
