"""The menu by job (descriptions, starting prices, the last model per job) and the admins'
/models: switching a model off and on and setting its price, at once for new orders only."""

from __future__ import annotations

import sqlalchemy as sa

from handlers.texts import tr
from storage import schema
from testkit.mocked_bot import button_rows
from tests.unit.conversation.conftest import ADMIN_ID, SIGNUP_BONUS, seedream_buttons, texts, to_card


def model_button(name: str, price: int) -> str:
    return tr("en", "model_button", name=name, price=price)


async def overrides(harness) -> list[dict]:
    async with harness.engine.connect() as conn:
        rows = await conn.execute(sa.select(schema.model_overrides))
        return [dict(r) for r in rows.mappings()]


async def test_each_job_lists_its_models_and_remembers_the_last_one(harness):
    ann = harness.user(6101)
    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_create_image"))
    picker = harness.screen(ann)
    lines = picker.text.splitlines()
    assert lines[0] == tr("en", "pick_create_image")
    assert tr("en", "pick_line", name="Nano Banana 2", about="Google's fast all-rounder, great with text",
              price=8) in lines
    assert tr("en", "pick_line", name="FLUX.2 Pro", about="Crisp, faithful to long prompts", price=12) in lines
    assert button_rows(picker.reply_markup)[0] == [model_button("Nano Banana 2", 8)]
    assert all("Edit" not in row[0] for row in button_rows(picker.reply_markup))

    await harness.press(ann, model_button("FLUX.2 Pro", 12))
    await harness.press(ann, tr("en", "btn_back"))  # options → this job's picker
    picker = harness.screen(ann)
    assert button_rows(picker.reply_markup)[0] == [model_button("FLUX.2 Pro", 12)]
    assert any(line.startswith("• FLUX.2 Pro") and line.endswith(tr("en", "pick_last"))
               for line in picker.text.splitlines())

    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_edit_photo"))  # another job remembers on its own
    rows = button_rows(harness.screen(ann).reply_markup)
    assert rows[0] == [model_button("Nano Banana 2 Edit", 8)]
    assert tr("en", "pick_last") not in harness.screen(ann).text
    await harness.press(ann, model_button("Seedream 4.5 Edit", 8))

    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_create_image"))
    assert button_rows(harness.screen(ann).reply_markup)[0] == [model_button("FLUX.2 Pro", 12)]
    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_edit_photo"))
    assert button_rows(harness.screen(ann).reply_markup)[0] == [model_button("Seedream 4.5 Edit", 8)]

    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_tools"))
    tools = harness.screen(ann)
    assert tools.text.splitlines()[0] == tr("en", "pick_tools")
    assert [row[0] for row in button_rows(tools.reply_markup)][:2] == [
        model_button("Topaz Upscale", 10), model_button("Remove background", 2)]


async def test_admin_switches_a_model_off_and_on_and_sets_its_price(harness):
    ann, admin = harness.user(6102), harness.user(ADMIN_ID, "Root")
    await harness.send(admin, "/start")
    listing = "\n".join(texts(await harness.send(admin, "/models")))
    assert tr("en", "adm_models_line", mark="✅", model="seedream_45_t2i", name="Seedream 4.5", price=8,
              source="") in listing
    assert "kling_30_t2v · Kling 3.0 · 35⭐" in listing and tr("en", "adm_models_usage") in listing

    card = await to_card(harness, ann, "a lighthouse")
    assert texts(await harness.send(admin, "/models off seedream_45_t2i")) == [
        tr("en", "adm_models_off", name="Seedream 4.5", model="seedream_45_t2i")]
    await harness.press(ann, seedream_buttons("en")["generate"], message=card)
    assert await harness.generations(6102) == []  # nothing started, nothing charged
    assert tr("en", "model_off", name="Seedream 4.5") in "\n".join(
        m.text or "" for m in harness.bot.session.shown(ann.id))
    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_create_image"))
    assert [model_button("Seedream 4.5", 8)] not in button_rows(harness.screen(ann).reply_markup)

    assert texts(await harness.send(admin, "/models on seedream_45_t2i")) == [
        tr("en", "adm_models_on", name="Seedream 4.5", model="seedream_45_t2i")]
    card = await to_card(harness, ann, "a lighthouse")
    await harness.press(ann, seedream_buttons("en")["generate"], message=card)
    [first] = await harness.generations(6102)
    assert first["cost"] == 8

    assert texts(await harness.send(admin, "/models price seedream_45_t2i 11")) == [
        tr("en", "adm_models_priced", name="Seedream 4.5", model="seedream_45_t2i", price=11, start=11)]
    b = seedream_buttons("en")
    await harness.send(ann, "/start")
    for button in ("images", "model", "aspect", "16:9"):
        await harness.press(ann, b[button].replace("8⭐", "11⭐"))
    await harness.press(ann, tr("en", "btn_continue", price=11))
    await harness.send(ann, "a second lighthouse")
    await harness.press(ann, tr("en", "btn_generate", price=11))
    costs = sorted(g["cost"] for g in await harness.generations(6102))
    assert costs == [8, 11]  # the charged order kept its price
    assert await harness.ledger(6102) == [("signup_bonus", SIGNUP_BONUS), ("spend", -8), ("spend", -11)]
    [row] = await overrides(harness)
    assert (row["model_key"], row["enabled"], row["price"], row["updated_by"]) == (
        "seedream_45_t2i", True, 11, ADMIN_ID)

    listing = "\n".join(texts(await harness.send(admin, "/models")))
    assert "seedream_45_t2i · Seedream 4.5 · 11⭐" + tr("en", "adm_models_src_admin") in listing
    await harness.send(admin, "/models price seedream_45_t2i reset")
    assert harness.catalog.price("seedream_45_t2i", {}) == 8
    assert texts(await harness.send(admin, "/models price seedream_45_t2i cheap")) == [
        tr("en", "adm_models_bad_price", value="cheap", max=100000)]
    assert texts(await harness.send(admin, "/models off midjourney")) == [
        tr("en", "adm_models_unknown", model="midjourney")]
    assert texts(await harness.send(admin, "/models explode")) == [tr("en", "adm_models_usage")]


async def test_models_does_not_exist_for_other_users(harness):
    bob = harness.user(6103, "Bob")
    await harness.send(bob, "/start")
    for command in ("/models", "/models off seedream_45_t2i"):
        assert texts(await harness.send(bob, command)) == [tr("en", "unknown_command")]
    assert await overrides(harness) == []


async def test_a_tool_takes_a_photo_and_no_prompt(harness):
    ann = harness.user(6104)
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_tools"))
    await harness.press(ann, model_button("Remove background", 2))
    await harness.press(ann, tr("en", "btn_continue", price=2))
    assert harness.screen(ann).text == tr("en", "ask_photo", name="Remove background", mb=5)
    await harness.feed(harness.updates.photo(ann, jpeg))  # no caption: straight to the card
    card = harness.screen(ann)
    buttons = [b for row in button_rows(card.reply_markup) for b in row]
    assert tr("en", "btn_generate", price=2) in buttons and tr("en", "btn_edit_prompt") not in buttons
    assert f"{tr('en', 'card_no_prompt')}\n" in card.text
    await harness.press(ann, tr("en", "btn_generate", price=2))
    [row] = await harness.generations(6104)
    assert (row["status"], row["model_key"], row["cost"], row["prompt"]) == (
        "queued", "recraft_remove_bg", 2, "")
    # The request the submitter will send: the photo alone, as KIE's remove-background takes it.
    assert harness.catalog.build_input("recraft_remove_bg", row["prompt"], {}, ["https://x.example/a.jpg"]) == {
        "image": "https://x.example/a.jpg"}


async def test_a_price_changed_after_the_card_is_not_charged_until_seen(harness):
    """The card showed 8⭐; an admin sets 11⭐ before the tap: nothing is charged, the card shows
    11⭐, and the next tap charges exactly that."""
    ann, admin = harness.user(6105), harness.user(ADMIN_ID, "Root")
    card = await to_card(harness, ann, "a lighthouse")
    await harness.send(admin, "/models price seedream_45_t2i 11")
    calls = await harness.press(ann, seedream_buttons("en")["generate"], message=card)
    assert tr("en", "price_changed", old=8, new=11) in [getattr(c, "text", None) for c in calls]
    assert await harness.generations(6105) == []
    assert button_rows(harness.screen(ann).reply_markup)[0] == [tr("en", "btn_generate", price=11)]
    await harness.press(ann, tr("en", "btn_generate", price=11))
    [row] = await harness.generations(6105)
    assert row["cost"] == 11
    assert await harness.ledger(6105) == [("signup_bonus", SIGNUP_BONUS), ("spend", -11)]
