"""The prompt helper end to end (real app, fake Telegram, KIE emulator's chat route): Improve →
Use it / Edit / Keep mine, the prompt KIE then receives, a failing chat that never blocks
Generate, the priced helper charged once under a triple tap and refunded once, the per-minute
limit, and Veo's own switch offered instead of the button."""

from __future__ import annotations

import pytest

from kie_client.catalog import Catalog
from testkit.kie.routes_chat import rewrite
from testkit.stack import LocalStack
from tests.e2e.conversation.conftest import (
    ADMIN_ID,
    balance,
    click,
    has_button,
    ledger,
    seen,
    start_image_flow,
    wait_media,
)

T = {
    "en": {"improve": "✨ Improve", "result": "✨ Improved prompt:", "use": "✅ Use it",
           "edit": "✏️ Edit", "keep": "↩️ Keep mine", "card": "Prompt: {}",
           "send_own": "Send your version", "failed": "Couldn't improve the prompt",
           "returned": "2⭐ returned", "charged": "Charged: 2⭐", "limit": "The limit is 1",
           "prompt": "a cat in a hat", "own": "my own cat"},
    "ru": {"improve": "✨ Улучшить", "result": "✨ Улучшенное описание:", "use": "✅ Использовать",
           "edit": "✏️ Изменить", "keep": "↩️ Оставить моё", "card": "Описание: {}",
           "send_own": "Пришлите свой вариант", "failed": "не получилось улучшить описание",
           "returned": "2⭐ вернулись", "charged": "Списано: 2⭐", "limit": "Лимит улучшений в минуту: 1",
           "prompt": "кот в шляпе", "own": "мой собственный кот"},
}
CHAT_PATH = "/gemini-3-flash/v1/chat/completions"


def helper_stack(tmp_path, **settings) -> LocalStack:
    return LocalStack(tmp_path, webhook=True, telegram_options={"chat_burst": 30},
                      settings={"ADMIN_IDS": str(ADMIN_ID), "SIGNUP_BONUS": "50", **settings})


def chats(stack) -> list:
    return [r for r in stack.kie.requests if r.path == CHAT_PATH]


def last_prompt(stack) -> str:
    return list(stack.kie.tasks.values())[-1].input["prompt"]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_improve_then_use_it_generates_with_the_improved_prompt(webhook_stack, lang):
    t, stack = T[lang], webhook_stack
    ann = stack.telegram.user(7001, first_name="Ann", language_code=lang)
    generate = await start_image_flow(ann, lang, t["prompt"])
    await click(ann, t["improve"])
    improved = rewrite(t["prompt"])
    screen = await seen(ann, t["result"])
    assert improved in screen.text and t["prompt"] in screen.text
    [request] = chats(stack)
    system, user = request.json["messages"]
    assert user == {"role": "user", "content": t["prompt"]}
    assert "image generator" in system["content"] and "English" in system["content"]
    await click(ann, t["use"])
    await ann.wait_until(lambda tr: any(e.from_bot and t["card"].format(improved) in e.text
                                        and generate in [b for row in e.buttons for b in row]
                                        for e in tr))
    await click(ann, generate)
    await wait_media(ann, 1)
    assert last_prompt(stack) == improved
    # free by default: only the generation was paid
    assert await ledger(stack, 7001) == [("signup_bonus", 50), ("spend", -8)]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_card_again_opens_offers_improve_too(webhook_stack, lang):
    """🔁 Again under a result opens the same card, which offers ✨ Improve like any other."""
    t, stack = T[lang], webhook_stack
    bea = stack.telegram.user(7002, first_name="Bea", language_code=lang)
    generate = await start_image_flow(bea, lang, t["prompt"])
    await click(bea, generate)
    await wait_media(bea, 1)
    improve_buttons = sum(1 for e in bea.transcript if e.from_bot for row in e.buttons
                          for b in row if b == t["improve"])
    await click(bea, {"en": "🔁 Again · 8⭐", "ru": "🔁 Ещё раз · 8⭐"}[lang])
    await bea.wait_until(lambda tr: sum(1 for e in tr if e.from_bot for row in e.buttons
                                        for b in row if b == t["improve"]) > improve_buttons)
    await click(bea, t["improve"])
    assert rewrite(t["prompt"]) in (await seen(bea, t["result"])).text


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_edit_types_an_own_version_and_keep_mine_keeps_it(webhook_stack, lang):
    t, stack = T[lang], webhook_stack
    bob = stack.telegram.user(7002, first_name="Bob", language_code=lang)
    generate = await start_image_flow(bob, lang, t["prompt"])
    await click(bob, t["improve"])
    await click(bob, t["edit"])
    asked = await seen(bob, t["send_own"])
    assert rewrite(t["prompt"]) in asked.text  # the improved text, to copy
    await bob.send_text(t["own"])
    await seen(bob, t["card"].format(t["own"]))
    # Improve the own version, then keep it after all.
    await bob.wait_until(has_button(t["improve"]))
    await bob.tap(t["improve"], bob.transcript[-1])
    await seen(bob, rewrite(t["own"]))
    await click(bob, t["keep"])
    card = await bob.wait_until(lambda tr: next(
        (e for e in reversed(tr) if e.from_bot and generate in [b for r in e.buttons for b in r]),
        None))
    assert t["card"].format(t["own"]) in card.text
    await bob.tap(generate, card)
    await wait_media(bob, 1)
    assert last_prompt(stack) == t["own"]
    assert len(chats(stack)) == 2


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_failing_chat_keeps_the_original_and_generate_works(webhook_stack, lang):
    t, stack = T[lang], webhook_stack
    cid = stack.telegram.user(7003, first_name="Cid", language_code=lang)
    generate = await start_image_flow(cid, lang, t["prompt"])
    stack.kie.faults.update({"chat_errors": 10, "chat_error_code": 500})
    await click(cid, t["improve"])
    card = await seen(cid, t["failed"])
    assert t["card"].format(t["prompt"]) in card.text
    assert generate in [b for row in card.buttons for b in row]
    await cid.tap(generate, card)
    await wait_media(cid, 1)
    assert last_prompt(stack) == t["prompt"]
    assert len(chats(stack)) == 2  # the first try and one retry (CHAT_RETRY), then given up
    assert await ledger(stack, 7003) == [("signup_bonus", 50), ("spend", -8)]


async def test_a_chat_that_hangs_is_given_up_after_the_timeout(tmp_path):
    async with helper_stack(tmp_path, PROMPT_HELPER_TIMEOUT_SECONDS="0.5") as stack:
        dan = stack.telegram.user(7004, first_name="Dan", language_code="en")
        generate = await start_image_flow(dan, "en", "a red fox")
        stack.kie.faults.update({"hang_chats": 5, "hang_seconds": 60.0})
        await click(dan, "✨ Improve")
        card = await seen(dan, "Couldn't improve the prompt")
        assert "Prompt: a red fox" in card.text
        await dan.tap(generate, card)
        await wait_media(dan, 1)
        assert last_prompt(stack) == "a red fox"


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_priced_helper_charges_once_under_a_triple_tap_and_refunds_once(tmp_path, lang):
    t = T[lang]
    async with helper_stack(tmp_path, PROMPT_HELPER_PRICE="2", PROMPT_HELPER_PER_MINUTE="10") as stack:
        eve = stack.telegram.user(7005, first_name="Eve", language_code=lang)
        await start_image_flow(eve, lang, t["prompt"])
        button = f"{t['improve']} · 2⭐"
        await eve.wait_until(has_button(button))
        card = eve.transcript[-1]
        for _ in range(3):  # three taps on the same card before the first is answered
            eve.press(button, card)
        screen = await seen(eve, t["result"])
        assert rewrite(t["prompt"]) in screen.text and t["charged"] in screen.text

        # A new prompt (a new card; a chat's updates are handled in order, so the taps above
        # are done once it shows) whose improve fails: charged, refunded once, tapped thrice.
        await click(eve, t["keep"])
        await eve.send_text(t["own"])
        await seen(eve, t["card"].format(t["own"]))
        assert await ledger(stack, 7005) == [("signup_bonus", 50), ("assist", -2)]
        assert len(chats(stack)) == 1  # the repeated taps showed the answer already given
        await eve.wait_until(has_button(button))
        stack.kie.faults.update({"chat_errors": 100, "chat_error_code": 500})
        card = eve.transcript[-1]
        for _ in range(3):
            eve.press(button, card)
        await seen(eve, t["returned"])
        await eve.send_text(t["prompt"])  # once its card shows, all three taps were handled
        await eve.wait_until(lambda tr: tr[-1].from_bot and t["card"].format(t["prompt"]) in tr[-1].text)
        assert await ledger(stack, 7005) == [("signup_bonus", 50), ("assist", -2), ("assist", -2),
                                             ("assist_refund", 2)]
        assert len(chats(stack)) == 1 + 3 * 2  # each failing tap asked (and retried once)
        assert await balance(stack, 7005) == 48
        assert await stack.app.repository.ledger_check() == []


async def test_priced_helper_with_too_little_balance_keeps_the_prompt(tmp_path):
    async with helper_stack(tmp_path, PROMPT_HELPER_PRICE="60") as stack:
        fay = stack.telegram.user(7006, first_name="Fay", language_code="en")
        generate = await start_image_flow(fay, "en", "a blue whale")
        await click(fay, "✨ Improve · 60⭐")
        card = await seen(fay, "Improve costs 60⭐ and your balance is 50⭐")
        assert "Prompt: a blue whale" in card.text and chats(stack) == []
        await fay.tap(generate, card)
        await wait_media(fay, 1)
        assert await ledger(stack, 7006) == [("signup_bonus", 50), ("spend", -8)]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_the_per_minute_limit(tmp_path, lang):
    t = T[lang]
    async with helper_stack(tmp_path, PROMPT_HELPER_PER_MINUTE="1") as stack:
        gus = stack.telegram.user(7007, first_name="Gus", language_code=lang)
        await start_image_flow(gus, lang, t["prompt"])
        await click(gus, t["improve"])
        await click(gus, t["keep"])
        await gus.send_text(t["own"])  # a new card: a new press
        await seen(gus, t["card"].format(t["own"]))
        await gus.wait_until(has_button(t["improve"]))
        await gus.tap(t["improve"], gus.transcript[-1])
        card = await seen(gus, t["limit"])
        assert t["card"].format(t["own"]) in card.text
        assert len(chats(stack)) == 1


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_veo_offers_its_own_switch_instead_of_improve(webhook_stack, lang):
    stack = webhook_stack
    catalog = Catalog()
    veo = catalog.get("veo31_fast")
    price = catalog.price(veo.key, {})
    job, cont, gen, switch_on, switch_off = {
        "en": ("🎬 Text to video", f"Continue · {price}⭐", f"Generate · {price}⭐",
               "🌐 Auto-translate & enhance: on", "🌐 Auto-translate & enhance: off"),
        "ru": ("🎬 Видео из текста", f"Далее · {price}⭐", f"Сгенерировать · {price}⭐",
               "🌐 Автоперевод и улучшение: вкл", "🌐 Автоперевод и улучшение: выкл"),
    }[lang]
    hal = stack.telegram.user(7008, first_name="Hal", language_code=lang)
    await stack.app.accounts.register(7008, language_code=lang)
    await stack.app.accounts.admin_credit("7008", "=200", admin_id=1)
    await hal.send_command("/start")
    await click(hal, job)
    await click(hal, f"{veo.name} · {price}⭐")
    await click(hal, cont)
    await hal.send_text("волна накрывает маяк")
    await hal.wait_until(has_button(gen))
    card = hal.transcript[-1]
    buttons = [b for row in card.buttons for b in row]
    assert switch_on in buttons and not any(b.startswith("✨") for b in buttons)
    await click(hal, switch_on)
    await hal.wait_until(has_button(switch_off))
    await click(hal, gen)
    await wait_media(hal, 1)
    [task] = stack.kie.tasks.values()
    assert task.api == "veo" and task.input["enableTranslation"] is False
    assert task.input["prompt"] == "волна накрывает маяк" and chats(stack) == []
