"""Photo templates end to end (the real app, fake Telegram, KIE emulator), in English and Russian:
browsing the gallery, one tap + one photo (or two) → the result, money once under triple taps and
a doubled update, the refund when KIE fails, and admins switching a template off, re-pricing it
and making a new one in chat."""

from __future__ import annotations

import pytest

from testkit.stack import LocalStack

from tests.e2e.conversation.conftest import (
    ADMIN_ID, balance, click, has_button, ledger, png_bytes, seen, wait_media)

T = {
    "en": {"menu": "✨ Templates", "figurine": "3D figurine", "action": "Action figure in a box",
           "oil": "Oil painting portrait", "duo": "Polaroid with a friend", "of9": "Template 1 of 9",
           "use10": "Use · 10⭐", "use12": "Use · 12⭐", "use15": "Use · 15⭐",
           "ask1": "send one photo of the person", "ask_first": "send the first photo",
           "ask_second": "Now send the second photo", "need_photo": "I need a photo at this step",
           "sticker": "Stickers can't be used here", "gone": "This template is no longer available",
           "changed": "has just changed from 10⭐ to 15⭐", "refunded": "Refunded to your balance: 10⭐",
           "cancel": "✖ Cancel", "cancelled": "Cancelled. Nothing was charged."},
    "ru": {"menu": "✨ Шаблоны", "figurine": "3D-фигурка", "action": "Экшен-фигурка в коробке",
           "oil": "Портрет маслом", "duo": "Полароид с другом", "of9": "Шаблон 1 из 9",
           "use10": "Использовать · 10⭐", "use12": "Использовать · 12⭐",
           "use15": "Использовать · 15⭐", "ask1": "пришлите одно фото человека",
           "ask_first": "пришлите первое фото", "ask_second": "Теперь пришлите второе фото",
           "need_photo": "На этом шаге нужно фото", "sticker": "Стикер здесь не подойдёт",
           "gone": "Этот шаблон больше недоступен", "changed": "изменилась с 10⭐ на 15⭐",
           "refunded": "На баланс возвращено 10⭐", "cancel": "✖ Отмена",
           "cancelled": "Отменено. Ничего не списано."},
}
LANGS = pytest.mark.parametrize("lang", ["en", "ru"])


def _cards(user) -> list:
    return [e for e in user.transcript if e.from_bot and e.media and e.buttons]


async def _gallery(user, lang: str):
    """The main menu's button opens the first card."""
    await user.send_command("/start")
    await user.wait_for_message(lambda m: m.buttons)
    await click(user, T[lang]["menu"])
    return await seen(user, T[lang]["of9"])


def _last_task(stack):
    return list(stack.kie.tasks.values())[-1]


@LANGS
async def test_browse_the_gallery_with_examples_and_wrapping_pages(webhook_stack, lang):
    t = T[lang]
    tg = webhook_stack.telegram
    ann = tg.user(7100, first_name="Ann", language_code=lang)
    card = await _gallery(ann, lang)
    assert t["figurine"] in card.text and "10⭐" in card.text
    assert card.media and card.media[0].kind == "photo" and card.media[0].data.startswith(b"\x89PNG")
    assert card.buttons == [["◀", "▶"], [t["use10"]], [("🏠 Menu" if lang == "en" else "🏠 Меню")]]
    await click(ann, "▶")
    assert t["action"] in (await seen(ann, t["action"])).text
    await ann.tap("◀", message=_cards(ann)[-1])
    await seen(ann, t["of9"])
    await ann.tap("◀", message=_cards(ann)[-1])
    last = await seen(ann, t["oil"])
    assert ("9 of 9" if lang == "en" else "9 из 9") in last.text
    # The old card goes when the next one comes: one card on screen.
    await ann.wait_until(lambda _: len(_cards(ann)) == 1)
    # The figurine's example was uploaded once, then sent again by Telegram's file_id.
    uploads = [c for c in tg.calls if c.method == "sendPhoto" and c.files]
    by_id = [c for c in tg.calls if c.method == "sendPhoto" and not c.files]
    assert len(uploads) == 3 and len(by_id) == 1  # figurine, action, oil uploaded; figurine reused


@LANGS
async def test_one_photo_template_with_wrong_input_first(webhook_stack, lang):
    t = T[lang]
    ann = webhook_stack.telegram.user(7200, first_name="Ann", language_code=lang)
    await _gallery(ann, lang)
    await click(ann, t["use10"])
    await seen(ann, t["ask1"])
    await ann.send_text("make me a figurine please")
    reply = await seen(ann, t["need_photo"])
    assert t["ask1"] in reply.text  # the reason, then the same question
    assert await balance(webhook_stack, 7200) == 50
    await ann.send_photo(png_bytes(64))
    result = (await wait_media(ann, 2))[-1]
    assert result.media[0].kind == "photo"
    # The caption names the template, not our long prompt.
    assert result.text == f"Nano Banana 2 Edit · ✨ {t['figurine']}"
    assert await ledger(webhook_stack, 7200) == [("signup_bonus", 50), ("spend", -10)]
    task = _last_task(webhook_stack)
    assert task.model == "nano-banana-2"
    assert "1/7 scale" in task.input["prompt"] and "the person in the photo" in task.input["prompt"]
    assert task.input["aspect_ratio"] == "3:4" and len(task.input["image_input"]) == 1
    assert await webhook_stack.app.repository.ledger_check() == []


@LANGS
async def test_two_photo_template_asks_for_each_person(webhook_stack, lang):
    t = T[lang]
    ann = webhook_stack.telegram.user(7300, first_name="Ann", language_code=lang)
    await _gallery(ann, lang)
    await ann.tap("◀", message=_cards(ann)[-1])
    await seen(ann, t["oil"])
    await ann.tap("◀", message=_cards(ann)[-1])
    await seen(ann, t["duo"])
    await click(ann, t["use12"])
    await seen(ann, t["ask_first"])
    await ann.send_photo(png_bytes(48))
    await seen(ann, t["ask_second"])
    await ann.send_sticker()
    reply = await seen(ann, t["sticker"])
    assert t["ask_second"] in reply.text
    await ann.send_photo(png_bytes(40))
    await wait_media(ann, 2)
    assert await ledger(webhook_stack, 7300) == [("signup_bonus", 50), ("spend", -12)]
    task = _last_task(webhook_stack)
    assert len(task.input["image_input"]) == 2
    assert "the first image" in task.input["prompt"] and "the second image" in task.input["prompt"]


@LANGS
async def test_triple_tap_and_a_doubled_photo_update_charge_once(webhook_stack, lang):
    t = T[lang]
    ann = webhook_stack.telegram.user(7400, first_name="Ann", language_code=lang)
    card = await _gallery(ann, lang)
    for _ in range(3):
        await ann.tap(t["use10"], message=card)
    webhook_stack.telegram.faults.duplicate_next(1)  # the photo's update arrives twice
    await ann.send_photo(png_bytes(64))
    await wait_media(ann, 2)
    await webhook_stack.settle()
    assert await ledger(webhook_stack, 7400) == [("signup_bonus", 50), ("spend", -10)]
    assert len(webhook_stack.kie.tasks) == 1
    # The request key is the photo: the same photo started again is the same order.
    g = (await webhook_stack.app.generations.library(user_id=7400, page=0, page_size=5))[0][0]
    again = await webhook_stack.app.generations.start(
        user_id=7400, chat_id=7400, model_key=g.model_key, options={"aspect_ratio": "3:4"},
        prompt=g.prompt, request_key=g.request_key, price=10,
        source_images=[], source_generation_id=g.id)
    assert again.created is False and await balance(webhook_stack, 7400) == 40


@LANGS
async def test_kie_failure_refunds_the_template_price(webhook_stack, lang):
    t = T[lang]
    ann = webhook_stack.telegram.user(7500, first_name="Ann", language_code=lang)
    await _gallery(ann, lang)
    webhook_stack.kie.faults.fail_next = 1
    await click(ann, t["use10"])
    await seen(ann, t["ask1"])
    await ann.send_photo(png_bytes(64))
    await seen(ann, t["refunded"])
    await webhook_stack.settle()
    assert await ledger(webhook_stack, 7500) == [("signup_bonus", 50), ("spend", -10), ("refund", 10)]
    assert await balance(webhook_stack, 7500) == 50


@LANGS
async def test_cancel_while_waiting_for_the_photo(webhook_stack, lang):
    t = T[lang]
    ann = webhook_stack.telegram.user(7550, first_name="Ann", language_code=lang)
    await _gallery(ann, lang)
    await click(ann, t["use10"])
    await seen(ann, t["ask1"])
    await click(ann, t["cancel"])
    await seen(ann, t["cancelled"])
    await ann.send_text("a lighthouse")  # now an ordinary prompt, not a template's wrong input
    assert not any(t["need_photo"] in e.text for e in ann.transcript if e.from_bot)
    assert await balance(webhook_stack, 7550) == 50


@LANGS
async def test_admin_switch_off_hides_it_and_a_stale_use_button_is_refused(webhook_stack, lang):
    t = T[lang]
    tg = webhook_stack.telegram
    admin = tg.user(ADMIN_ID, first_name="Root", language_code="en")
    ann = tg.user(7600, first_name="Ann", language_code=lang)
    card = await _gallery(ann, lang)
    await admin.send_command("/templates", "off figurine_3d")
    await seen(admin, "⛔ Template figurine_3d")
    answer = await ann.tap(t["use10"], message=card)
    assert answer.show_alert and answer.text.startswith(t["gone"])
    fresh = await seen(ann, "1 of 8" if lang == "en" else "1 из 8")
    assert t["action"] in fresh.text and t["figurine"] not in fresh.text
    assert await balance(webhook_stack, 7600) == 50
    await admin.send_command("/templates", "list")
    listing = await seen(admin, "⛔ figurine_3d")
    assert "✅ action_figure" in listing.text
    await admin.send_command("/templates", "on figurine_3d")
    await seen(admin, "✅ Template figurine_3d")
    await ann.send_command("/templates")
    await seen(ann, t["of9"])


@LANGS
async def test_admin_price_change_applies_to_new_orders(webhook_stack, lang):
    t = T[lang]
    tg = webhook_stack.telegram
    admin = tg.user(ADMIN_ID, first_name="Root", language_code="en")
    ann = tg.user(7700, first_name="Ann", language_code=lang)
    old_card = await _gallery(ann, lang)
    await admin.send_command("/templates", "price figurine_3d 15")
    await seen(admin, "15⭐ per order")
    answer = await ann.tap(t["use10"], message=old_card)  # the card still says 10⭐
    assert answer.show_alert and t["changed"] in answer.text
    await click(ann, t["use15"])
    await seen(ann, t["ask1"])
    await ann.send_photo(png_bytes(64))
    await wait_media(ann, 3)  # two cards, then the result
    assert await ledger(webhook_stack, 7700) == [("signup_bonus", 50), ("spend", -15)]


async def test_price_change_between_use_and_photo_charges_nothing(webhook_stack):
    tg = webhook_stack.telegram
    admin = tg.user(ADMIN_ID, first_name="Root", language_code="en")
    ann = tg.user(7750, first_name="Ann", language_code="en")
    await _gallery(ann, "en")
    await click(ann, "Use · 10⭐")
    await seen(ann, "send one photo")
    await admin.send_command("/templates", "price figurine_3d 15")
    await seen(admin, "15⭐ per order")
    await ann.send_photo(png_bytes(64))
    await seen(ann, "has just changed from 10⭐ to 15⭐")
    await ann.wait_until(has_button("Use · 15⭐"))
    assert await ledger(webhook_stack, 7750) == [("signup_bonus", 50)]


async def test_admin_makes_a_template_in_chat_and_bad_edits_are_refused(webhook_stack):
    tg = webhook_stack.telegram
    admin = tg.user(ADMIN_ID, first_name="Root", language_code="en")
    ann = tg.user(7800, first_name="Ann", language_code="ru")
    await admin.send_command("/templates", "add pirate nano_banana_2_edit 1 Dress {subject} as a pirate captain on a ship")
    await seen(admin, "Template pirate added, switched off")
    await admin.send_command("/templates", "prompt pirate Make {nobody} a pirate")
    await seen(admin, "Not saved: prompt: unknown placeholder {nobody}")
    await admin.send_command("/templates", "add pirate2 seedream_45_t2i 1 Dress {subject} as a pirate")
    await seen(admin, "Not saved: model: 'seedream_45_t2i' is not an image edit model")
    await admin.send_command("/templates", "add pirate nano_banana_2_edit 1 again")
    await seen(admin, "The key pirate is already used")
    await admin.send_command("/templates", "name pirate ru Пират")
    await seen(admin, "Template pirate saved")
    await admin.send_command("/templates", "desc pirate ru Капитан на корабле")
    await admin.send_command("/templates", "price pirate 9")
    await seen(admin, "Template pirate (“pirate”): 9⭐ per order")
    await admin.send_command("/templates", "on pirate")
    await seen(admin, "✅ Template pirate")
    await ann.send_command("/templates")
    await seen(ann, "Шаблон 1 из 10")
    # The admin-made template is last: ◀ from the first card wraps to it.
    await ann.tap("◀", message=_cards(ann)[-1])
    card = await seen(ann, "Пират")
    assert "Капитан на корабле" in card.text and card.buttons[1] == ["Использовать · 9⭐"]
    await click(ann, "Использовать · 9⭐")
    await ann.send_photo(png_bytes(64))
    await wait_media(ann, 2)
    assert "pirate captain" in _last_task(webhook_stack).input["prompt"]
    assert await ledger(webhook_stack, 7800) == [("signup_bonus", 50), ("spend", -9)]
    # Another process (a second TemplateService on the same database) sees it too.
    from bot.services.templates import TemplateService
    from bot.templates import load_templates

    other = TemplateService(webhook_stack.app.repository, webhook_stack.app.catalog, load_templates())
    await other.refresh()
    assert other.on_sale("pirate") is not None and other.price(other.get("pirate")) == 9


async def test_non_admins_get_the_gallery_for_any_subcommand(webhook_stack):
    ann = webhook_stack.telegram.user(7900, first_name="Ann", language_code="en")
    await ann.send_command("/templates", "off figurine_3d")
    await seen(ann, "Template 1 of 9")
    assert webhook_stack.app.repository and (await webhook_stack.app.repository.template_rows()) == []


SHORT = {"en": ("Not enough ⭐: “Oil painting portrait” costs 12⭐, you have 4⭐", "💳 Top up"),
         "ru": ("Не хватает ⭐: «Портрет маслом» стоит 12⭐, у вас 4⭐", "💳 Пополнить")}


@LANGS
async def test_short_balance_charges_nothing_and_asks_for_the_photo_again(tmp_path, lang):
    async with LocalStack(tmp_path, webhook=True, telegram_options={"chat_burst": 30},
                          settings={"SIGNUP_BONUS": "4"}) as stack:
        text, topup = SHORT[lang]
        t = T[lang]
        ann = stack.telegram.user(8100, first_name="Ann", language_code=lang)
        await _gallery(ann, lang)
        await ann.tap("◀", message=_cards(ann)[-1])
        await seen(ann, t["oil"])
        await click(ann, "Use · 12⭐" if lang == "en" else "Использовать · 12⭐")
        await ann.send_photo(png_bytes(64))
        short = await seen(ann, text)
        assert topup in short.buttons[0]
        assert await ledger(stack, 8100) == [("signup_bonus", 4)] and not stack.kie.tasks


async def test_an_operators_templates_file_with_its_own_examples(tmp_path):
    from bot.templates import EXAMPLES_DIR

    folder = tmp_path / "mine"
    (folder / "examples").mkdir(parents=True)
    (folder / "examples" / "cat.png").write_bytes((EXAMPLES_DIR / "sticker.png").read_bytes())
    (folder / "templates.toml").write_text('''
[[template]]
key = "catify"
name = { en = "Cat ears", ru = "Кошачьи ушки" }
description = { en = "Adds cat ears", ru = "Добавляет кошачьи ушки" }
model = "seedream_45_edit"
price = 7
example = "cat.png"
prompt = "Add cute cat ears to {subject}"
''', encoding="utf-8")
    async with LocalStack(tmp_path / "stack", webhook=True, settings={
            "SIGNUP_BONUS": "50", "TEMPLATES_FILE": str(folder / "templates.toml")}) as stack:
        ann = stack.telegram.user(8200, first_name="Ann", language_code="en")
        await ann.send_command("/templates")
        card = await seen(ann, "Template 1 of 1")
        assert "Cat ears" in card.text and card.buttons == [["Use · 7⭐"], ["🏠 Menu"]]
        assert card.media[0].data == (EXAMPLES_DIR / "sticker.png").read_bytes()
        await click(ann, "Use · 7⭐")
        await ann.send_photo(png_bytes(64))
        await wait_media(ann, 2)
        assert _last_task(stack).input["prompt"] == "Add cute cat ears to the person in the photo"
        assert await ledger(stack, 8200) == [("signup_bonus", 50), ("spend", -7)]


async def test_a_model_switched_off_by_models_hides_its_templates(webhook_stack):
    tg = webhook_stack.telegram
    admin = tg.user(ADMIN_ID, first_name="Root", language_code="en")
    ann = tg.user(8300, first_name="Ann", language_code="en")
    card = await _gallery(ann, "en")
    await admin.send_command("/models", "off nano_banana_2_edit")
    await seen(admin, "is off")
    answer = await ann.tap("Use · 10⭐", message=card)
    assert answer.show_alert and answer.text.startswith("This template is no longer available")
    fresh = await seen(ann, "Template 1 of 3")  # ghibli, headshot and oil portrait stay
    assert "Anime / Ghibli style" in fresh.text
    assert await balance(webhook_stack, 8300) == 50


async def test_two_photo_template_from_one_album(webhook_stack):
    ann = webhook_stack.telegram.user(8400, first_name="Аня", language_code="ru")
    await _gallery(ann, "ru")
    await ann.tap("◀", message=_cards(ann)[-1])
    await ann.tap("◀", message=await seen(ann, "Портрет маслом"))
    await seen(ann, "Полароид с другом")
    await click(ann, "Использовать · 12⭐")
    await ann.send_album([png_bytes(48), png_bytes(40)])
    await wait_media(ann, 2)
    assert len(_last_task(webhook_stack).input["image_input"]) == 2
    assert await ledger(webhook_stack, 8400) == [("signup_bonus", 50), ("spend", -12)]


FAKE_PICTURE = {"en": "This image can't be used", "ru": "Это изображение не подходит"}


@LANGS
async def test_a_file_that_only_claims_to_be_a_picture_gets_the_reason_and_the_question(webhook_stack, lang):
    t = T[lang]
    ann = webhook_stack.telegram.user(8500, first_name="Ann", language_code=lang)
    await _gallery(ann, lang)
    await click(ann, t["use10"])
    await seen(ann, t["ask1"])
    await ann.send_document(b"this is not a png at all", "me.png", "image/png")
    reply = await seen(ann, FAKE_PICTURE[lang])
    assert t["ask1"] in reply.text
    await ann.send_photo(png_bytes(64))  # the same question still stands: a real photo works
    await wait_media(ann, 2)
    assert await ledger(webhook_stack, 8500) == [("signup_bonus", 50), ("spend", -10)]
