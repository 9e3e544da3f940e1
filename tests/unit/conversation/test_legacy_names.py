"""Results stored before object names had their random part keep working: a generation's files
are found by the paths recorded on its row (generations.stored_paths), never recomputed."""

from __future__ import annotations

from aiogram.methods import SendDocument

from handlers.callbacks import GenAction, GenCb
from storage.media import media_path
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
