"""One-tap follow-ups under a result, through the real app, the fake Telegram and the KIE
emulator: each runs on OUR stored copy (what KIE received is the bytes of our stored result),
is charged once under triple and concurrent taps, and is refunded once when KIE fails it; Edit
this makes the result the edit model's source; a stale or foreign button is "expired"."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conversation.conftest import (
    balance,
    click,
    ledger,
    seen,
    start_image_flow,
    wait_media,
)

T = {
    "en": {"upscale": "⬆️ Upscale · 10⭐", "remove_bg": "✂️ Remove background · 2⭐",
           "better": "💎 Redo in Nano Banana Pro · 18⭐",
           "better_edit": "💎 Redo in Nano Banana Pro Edit · 18⭐", "edit": "✏️ Edit this · 8⭐",
           "again": "🔁 Again · 8⭐", "original": "📎 Original file", "animate": "🎬 Animate · from",
           "refunded": "Refunded to your balance: 18⭐", "describe": "Describe the change",
           "source": "Source: your result #", "generate": "Generate · 8⭐",
           "expired": "This menu has expired", "already": "Already started"},
    "ru": {"upscale": "⬆️ Увеличить · 10⭐", "remove_bg": "✂️ Убрать фон · 2⭐",
           "better": "💎 Переделать в Nano Banana Pro · 18⭐",
           "better_edit": "💎 Переделать в Nano Banana Pro Edit · 18⭐", "edit": "✏️ Изменить · 8⭐",
           "again": "🔁 Ещё раз · 8⭐", "original": "📎 Исходный файл", "animate": "🎬 Оживить · от",
           "refunded": "На баланс возвращено 18⭐", "describe": "Опишите изменение",
           "source": "Исходник: ваш результат №", "generate": "Сгенерировать · 8⭐",
           "expired": "Это меню устарело", "already": "Генерация уже запущена"},
}


async def _first_result(stack, user, lang):
    generate = await start_image_flow(user, lang, "a red fox in snow")
    await click(user, generate)
    [result] = await wait_media(user, 1)
    [g], _ = await stack.app.generations.library(user_id=user.id, page=0, page_size=5)
    return result, g


def _uploaded_for(stack, model: str) -> list[bytes]:
    """The bytes KIE received as the input of every task of `model` (through its upload host)."""
    found = []
    for task in stack.kie.tasks.values():
        if task.model != model:
            continue
        for value in task.input.values():
            for url in value if isinstance(value, list) else [value]:
                if isinstance(url, str) and "/files/" in url:
                    found.append(stack.kie.uploads[url.split("/files/", 1)[1]].data)
    return found


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_result_shows_every_follow_up_with_its_price(webhook_stack, lang):
    t = T[lang]
    ann = webhook_stack.telegram.user(7100, first_name="Ann", language_code=lang)
    result, _ = await _first_result(webhook_stack, ann, lang)
    rows = result.buttons
    assert rows[0] == [t["again"], t["original"]]
    assert rows[1][0] == t["edit"] and rows[1][1].startswith(t["animate"])
    assert rows[2] == [t["upscale"], t["remove_bg"]] and rows[3] == [t["better"]]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_remove_background_runs_on_our_stored_copy(webhook_stack, lang):
    t = T[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7250, first_name="Ann", language_code=lang)
    result, first = await _first_result(stack, ann, lang)
    await asyncio.gather(ann.tap(t["remove_bg"], result), ann.tap(t["remove_bg"], result))
    cut = (await wait_media(ann, 2))[-1]
    await stack.settle()
    assert len([e for e in ann.transcript if e.from_bot and e.media]) == 2
    assert await ledger(stack, 7250) == [("signup_bonus", 50), ("spend", -8), ("spend", -2)]
    ours = await stack.app.generations.pipeline.media.read(first.stored_paths[0])
    assert _uploaded_for(stack, "recraft/remove-background") == [ours]
    assert t["remove_bg"] not in [b for row in cut.buttons for b in row]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_upscale_triple_tap_charges_once_and_runs_on_our_stored_copy(webhook_stack, lang):
    t = T[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7200, first_name="Ann", language_code=lang)
    result, first = await _first_result(stack, ann, lang)
    answers = await asyncio.gather(*(ann.tap(t["upscale"], result) for _ in range(3)))
    assert all(a.answered for a in answers)
    assert sum(1 for a in answers if a.text and t["already"] in a.text) == 2
    upscaled = (await wait_media(ann, 2))[-1]
    await ann.tap(t["upscale"], result)  # a fourth, later tap: still the same row
    await stack.settle()
    assert len([e for e in ann.transcript if e.from_bot and e.media]) == 2
    assert await ledger(stack, 7200) == [("signup_bonus", 50), ("spend", -8), ("spend", -10)]
    # One status card (the repeated taps' cards were deleted), brought to its final state.
    [card] = [e for e in ann.transcript if e.from_bot and not e.media and "Topaz Upscale" in e.text]
    assert card.edited and "⏳" not in card.text and not card.buttons
    # KIE got one task, whose input is our stored copy of the result (uploaded by us), never
    # KIE's own result URL.
    ours = await stack.app.generations.pipeline.media.read(first.stored_paths[0])
    assert [t_.model for t_ in stack.kie.tasks.values()].count("topaz/image-upscale") == 1
    assert _uploaded_for(stack, "topaz/image-upscale") == [ours]
    assert not any(first.result_urls[0] == v for task in stack.kie.tasks.values()
                   for v in task.input.values())
    # The upscaled picture has follow-ups of its own (no Upscale of an upscale).
    flat = [b for row in upscaled.buttons for b in row]
    assert t["remove_bg"] in flat and t["upscale"] not in flat
    assert await stack.app.repository.ledger_check() == []


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_better_model_failure_refunds_once_and_retaps_do_not_charge(webhook_stack, lang):
    t = T[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7300, first_name="Ann", language_code=lang)
    result, first = await _first_result(stack, ann, lang)
    stack.kie.faults.fail_models = {"nano-banana-pro"}
    await ann.tap(t["better"], result)
    await seen(ann, t["refunded"])
    for _ in range(3):  # after the failure: the key is used, nothing is charged or run again
        await ann.tap(t["better"], result)
    await stack.settle()
    assert await ledger(stack, 7300) == [("signup_bonus", 50), ("spend", -8), ("spend", -18),
                                         ("refund", 18)]
    assert await balance(stack, 7300) == 42 and await stack.app.repository.ledger_check() == []
    tasks = [task for task in stack.kie.tasks.values() if task.model == "nano-banana-pro"]
    assert len(tasks) == 1
    # Same request on the stronger model: the prompt and the options both models have.
    assert tasks[0].input["prompt"] == "a red fox in snow"
    assert tasks[0].input["aspect_ratio"] == "16:9"


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_edit_this_makes_the_result_the_edit_models_source(webhook_stack, lang):
    t = T[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7400, first_name="Ann", language_code=lang)
    result, first = await _first_result(stack, ann, lang)
    await ann.tap(t["edit"], result)
    await seen(ann, t["describe"])
    await ann.send_text("make it night")
    card = await seen(ann, t["source"])
    assert f"#{first.id}" in card.text or f"№{first.id}" in card.text
    await asyncio.gather(ann.tap(t["generate"], card), ann.tap(t["generate"], card))
    edited = (await wait_media(ann, 2))[-1]
    await stack.settle()
    assert len([e for e in ann.transcript if e.from_bot and e.media]) == 2
    assert await ledger(stack, 7400) == [("signup_bonus", 50), ("spend", -8), ("spend", -8)]
    ours = await stack.app.generations.pipeline.media.read(first.stored_paths[0])
    assert _uploaded_for(stack, "seedream/4.5-edit") == [ours]
    assert "make it night" in edited.text
    # Redo the edit on the stronger edit model: the same prompt and the same input, which is
    # the edit's stored source photo (our copy of the first result).
    await ann.tap(t["better_edit"], edited)
    await wait_media(ann, 3)
    assert _uploaded_for(stack, "nano-banana-pro") == [ours]
    [task] = [x for x in stack.kie.tasks.values() if x.model == "nano-banana-pro"]
    assert task.input["prompt"] == "make it night"
    assert await ledger(stack, 7400) == [("signup_bonus", 50), ("spend", -8), ("spend", -8),
                                         ("spend", -18)]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_foreign_or_forged_follow_up_is_expired(webhook_stack, lang):
    t = T[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7500, first_name="Ann", language_code=lang)
    bob = stack.telegram.user(7501, first_name="Bob", language_code=lang)
    _, first = await _first_result(stack, ann, lang)
    await bob.send_command("/start")
    menu = await bob.wait_for_message(lambda m: m.buttons)
    for data in (f"fu:up:{first.id}", "fu:zz:1", f"fu:bt:{2**63}"):
        record = _forge(bob, menu, data)
        await stack.telegram.notifier.wait_for(lambda: record.answer is not None, 20, "answer")
        assert t["expired"] in (record.answer or {}).get("text", "")
    await stack.settle()
    assert await ledger(stack, 7501) == [("signup_bonus", 50)]
    assert await ledger(stack, 7500) == [("signup_bonus", 50), ("spend", -8)]


def _forge(user, message, data: str):
    """A callback query with data no button of this chat carries (a forged or foreign one)."""
    from testkit.telegram.state import CallbackQueryRecord

    fake = user.fake
    stored = next(s for s in reversed(user.chat.live()) if s.message_id == message.message_id)
    record = CallbackQueryRecord(fake.new_id(), user.id, user.id, stored.message_id, data,
                                 fake.clock())
    fake.callback_queries[record.id] = record
    fake.emit({"callback_query": {"id": record.id, "from": user.info.as_user(),
                                  "message": dict(stored.message),
                                  "chat_instance": str(-user.id * 7919), "data": data}})
    return record


V = {"en": {"three": "3", "generate": "Generate · 24⭐", "note": "3 variants of Seedream 4.5",
            "partial": "2 of 3 variants of Seedream 4.5 were made; 8⭐",
            "upscale": "⬆️ Upscale · 10⭐"},
     "ru": {"three": "3", "generate": "Сгенерировать · 24⭐", "note": "Готово вариантов от Seedream 4.5: 3.",
            "partial": "Готово вариантов от Seedream 4.5: 2 из 3; за неудавшиеся (1) возвращено 8⭐",
            "upscale": "⬆️ Увеличить · 10⭐"}}


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_three_variants_come_as_one_album_charged_three_times_once(webhook_stack, lang):
    v = V[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7600, first_name="Ann", language_code=lang)
    generate = await start_image_flow(ann, lang, "a red fox in snow")
    await click(ann, v["three"])
    card = await ann.wait_until(lambda t: next(
        (e for e in reversed(t) if e.from_bot and any(v["generate"] in b for row in e.buttons
                                                      for b in row)), None))
    assert generate != v["generate"]
    # A double tap and a replayed tap: one order of three rows, charged 3 × 8 once.
    await asyncio.gather(ann.tap(v["generate"], card), ann.tap(v["generate"], card))
    note = await seen(ann, v["note"])
    await stack.settle()
    pictures = [e for e in ann.transcript if e.from_bot and e.media]
    assert len(pictures) == 3 and all(p.kind == "photo" for p in pictures)
    groups = {p.raw.get("media_group_id") for p in pictures}
    assert len(groups) == 1 and None not in groups  # one sendMediaGroup
    assert "a red fox in snow" in pictures[0].text  # the caption on the first
    assert await ledger(stack, 7600) == [("signup_bonus", 50)] + [("spend", -8)] * 3
    assert len(stack.kie.tasks) == 3 and await stack.app.repository.ledger_check() == []
    # After the album: numbered buttons for each picture and the follow-ups of the first.
    assert note.buttons[0] == ["1", "2", "3"] and v["upscale"] in note.buttons[3]
    rows, _ = await stack.app.generations.library(user_id=7600, page=0, page_size=10)
    assert len(rows) == 3 and all(r.status == "succeeded" and r.delivered_at for r in rows)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_failed_variant_is_refunded_its_share_once(webhook_stack, lang):
    v = V[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7700, first_name="Ann", language_code=lang)
    await start_image_flow(ann, lang, "a red fox in snow")
    await click(ann, v["three"])
    stack.kie.faults.fail_next = 1  # the first of the three tasks fails
    await click(ann, v["generate"])
    note = await seen(ann, v["partial"])
    await stack.settle()
    assert len([e for e in ann.transcript if e.from_bot and e.media]) == 2
    assert sorted(await ledger(stack, 7700)) == sorted(
        [("signup_bonus", 50)] + [("spend", -8)] * 3 + [("refund", 8)])
    assert await balance(stack, 7700) == 50 - 16 and note.buttons[0] == ["1", "2"]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_cancelling_a_queued_order_refunds_every_row_once(tmp_path, lang):
    from testkit.stack import LocalStack

    v = V[lang]
    cancel, done, queued = {"en": ("✖ Cancel", "Cancelled. 24⭐ returned", "waiting in line"),
                            "ru": ("✖ Отмена", "Отменено. На баланс возвращено 24⭐", "в очереди")}[lang]
    async with LocalStack(tmp_path, webhook=True, settings={"SIGNUP_BONUS": "50"},
                          telegram_options={"chat_burst": 30}) as stack:
        ann = stack.telegram.user(7800, first_name="Ann", language_code=lang)
        await stack.app.jobs.stop()  # the order stays in line
        stack.app.generations.pipeline.kick = lambda stage: None
        await start_image_flow(ann, lang, "a red fox in snow")
        await click(ann, v["three"])
        await click(ann, v["generate"])
        status = await seen(ann, queued)
        await ann.tap(cancel, status)
        await seen(ann, done)
        rows, _ = await stack.app.generations.library(user_id=7800, page=0, page_size=10,
                                                      statuses=("failed",))
        assert len(rows) == 3 and all(r.error == "cancelled" for r in rows)
        assert sorted(await ledger(stack, 7800)) == sorted(
            [("signup_bonus", 50)] + [("spend", -8)] * 3 + [("refund", 8)] * 3)
        assert await balance(stack, 7800) == 50 and not stack.kie.tasks


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_a_follow_up_switched_off_or_unaffordable_charges_nothing(webhook_stack, lang):
    t = T[lang]
    short = {"en": "Not enough ⭐: this costs 18⭐, you have 10⭐",
             "ru": "Не хватает ⭐: стоимость 18⭐, у вас 10⭐"}[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7900, first_name="Ann", language_code=lang)
    result, _ = await _first_result(stack, ann, lang)
    # An admin switches the upscaler off after the result was delivered: its button is stale.
    await stack.app.repository.set_model_override("topaz_upscale", enabled=False)
    await stack.app.dispatcher.workflow_data["models"].refresh(force=True)
    answer = await ann.tap(t["upscale"], result)
    assert t["expired"] in (answer.text or "")
    # Too little ⭐ for the better model: a polite message with Top up, nothing charged.
    await stack.app.accounts.admin_credit("7900", "=10", admin_id=1)
    await ann.tap(t["better"], result)
    await seen(ann, short)
    await stack.settle()
    assert len([e for e in ann.transcript if e.from_bot and e.media]) == 1
    assert [r for r, _ in await ledger(stack, 7900)].count("spend") == 1
    assert await balance(stack, 7900) == 10 and not any(
        task.model in ("topaz/image-upscale", "nano-banana-pro") for task in stack.kie.tasks.values())


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request):
    # A sync fixture picks the database (an async one cannot ask for another by name).
    return request.getfixturevalue("pg_database") if request.param == "postgres" else None


async def test_truly_concurrent_follow_ups_of_one_result_make_one_row(tmp_path, db_url):
    """The chat's taps reach handlers one at a time (the inbox); two processes would not. Three
    runs at once through the service itself: the database's unique request key decides."""
    from testkit.stack import LocalStack

    async with LocalStack(tmp_path, webhook=True, database_url=db_url, settings={"SIGNUP_BONUS": "50"},
                          telegram_options={"chat_burst": 30}) as stack:
        await _concurrent_follow_ups(stack)


async def _concurrent_follow_ups(stack):
    ann = stack.telegram.user(7950, first_name="Ann", language_code="en")
    _, first = await _first_result(stack, ann, "en")
    service = stack.app.dispatcher.workflow_data["followups"]
    from bot.services.followups import FollowAction

    g, offer = await service.offer(user_id=7950, generation_id=first.id,
                                   action=FollowAction.UPSCALE)
    results = await asyncio.gather(*(service.run(g=g, offer=offer, chat_id=7950)
                                     for _ in range(3)))
    assert sum(1 for r in results if r.created) == 1
    assert len({r.generation.id for r in results}) == 1
    await wait_media(ann, 2)
    await stack.settle()
    assert await ledger(stack, 7950) == [("signup_bonus", 50), ("spend", -8), ("spend", -10)]
    # The losers' copies of the source were deleted; the winner's is the one KIE got.
    ours = await stack.app.generations.pipeline.media.read(first.stored_paths[0])
    assert _uploaded_for(stack, "topaz/image-upscale") == [ours]


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_an_order_kie_fails_entirely_is_one_message_and_every_share_refunded(webhook_stack,
                                                                                  lang):
    v = V[lang]
    failed = {"en": "none of the 3 variants could be made", "ru": "ни один вариант из 3"}[lang]
    stack = webhook_stack
    ann = stack.telegram.user(7960, first_name="Ann", language_code=lang)
    await start_image_flow(ann, lang, "a red fox in snow")
    await click(ann, v["three"])
    stack.kie.faults.fail_models = {"seedream/4.5-text-to-image"}
    await click(ann, v["generate"])
    message = await seen(ann, failed)
    await stack.settle()
    assert "24⭐" in message.text
    assert sum(1 for e in ann.transcript if e.from_bot and failed in e.text) == 1
    assert not [e for e in ann.transcript if e.from_bot and e.media]
    assert sorted(await ledger(stack, 7960)) == sorted(
        [("signup_bonus", 50)] + [("spend", -8)] * 3 + [("refund", 8)] * 3)
