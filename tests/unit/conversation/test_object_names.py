"""Object names through the conversation: a source photo's name carries the generation's random
part and a double tap leaves no second copy; results stored before names had that part keep
working, because a generation's files are found by the paths on its row (stored_paths)."""

from __future__ import annotations

from aiogram.methods import SendDocument

from bot.services.pipeline.context import MEDIA_TOKEN_KEY, SOURCE_PATH_KEY
from handlers.callbacks import GenAction, GenCb
from handlers.texts import tr
from storage.media import media_path
from tests.unit.conversation.conftest import seedream_buttons
from storage.models import GenerationStatus as S

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


async def _chunks(data: bytes):
    yield data


async def test_a_result_stored_under_its_old_name_is_sent_again(harness):
    ann = harness.user(7001)
    await harness.send(ann, "/start")
    started = await harness.repository.start_generation(
        user_id=7001, chat_id=7001, model_key="seedream_45_t2i", kind="image", cost=0,
        options={}, request_key="legacy-1", prompt="an old lighthouse")
    gid = started.generation.id
    legacy = media_path(7001, "image", gid, 0, 1_700_000_000, "png", token="")
    assert legacy == f"7001/image/{gid}_0_1700000000.png"  # the name before the token
    await harness.media.put(legacy, _chunks(PNG), content_type="image/png")
    for before, after, fields in [(S.queued, S.generating, {"task_id": "t-legacy"}),
                                  (S.generating, S.storing, {}),
                                  (S.storing, S.succeeded, {"stored_paths": [legacy]})]:
        assert await harness.repository.transition(gid, from_statuses=[before], to_status=after,
                                                   **fields)

    data = GenCb(action=GenAction.ORIGINAL, generation_id=gid).pack()
    calls = await harness.feed(harness.updates.callback(ann, data, message=harness.screen(ann)))
    [sent] = [c for c in calls if isinstance(c, SendDocument)]
    assert sent.chat_id == 7001 and sent.document.path == legacy
    assert b"".join([chunk async for chunk in sent.document.read(harness.bot)]) == PNG


async def test_a_double_tap_keeps_one_source_photo_named_with_the_rows_token(harness):
    ann = harness.user(7002)
    b = seedream_buttons("en")
    await harness.send(ann, "/start")
    await harness.press(ann, tr("en", "job_edit_photo"))
    await harness.press(ann, tr("en", "model_button", name="Seedream 4.5 Edit", price=8))
    await harness.press(ann, b["continue"])
    await harness.feed(harness.updates.photo(ann, PNG, caption="make it snowy"))
    card = harness.screen(ann)
    await harness.press(ann, b["generate"], message=card)
    await harness.press(ann, b["generate"], message=card)  # the same card: the same request

    [row] = await harness.generations(7002)
    token, source = row["options"][MEDIA_TOKEN_KEY], row["options"][SOURCE_PATH_KEY]
    assert source.startswith("7002/input/r") and source.endswith(f"_{token}.png")
    inputs = sorted(p.relative_to(harness.media.root).as_posix()
                    for p in (harness.media.root / "7002" / "input").iterdir())
    assert inputs == [source]
    assert await harness.ledger(7002) == [("signup_bonus", 50), ("spend", -8)]
