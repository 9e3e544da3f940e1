"""What people send besides text: an album (a media group, one update per photo) collected up to
the model's limit and answered once the group stops; a model serving text and image modes from
one menu entry (Veo 3.1: pictures optional); a voice message as a talking photo's audio input,
priced per second of it."""

from __future__ import annotations

import asyncio

from handlers.albums import AlbumCollector
from handlers.texts import tr
from kie_client.catalog import Catalog
from storage.media import LocalMediaStore
from testkit.kie.media import make_png
from tests.unit.conversation.conftest import Harness

VEO_PRICE = Catalog().price("veo31_fast", {})  # 720p, 16:9
TALK = Catalog().get("kling_avatar")  # photo + voice, ⭐ per second of the voice (data/talking.toml)
PER_SECOND = TALK.rule.unit({})[0]


class QuietGate:
    """The album collector's wait: open only when the test says the group's messages stopped."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.waits = 0

    async def sleep(self, seconds: float) -> None:
        self.waits += 1
        await self.opened.wait()


def gated(h: Harness) -> tuple[AlbumCollector, QuietGate]:
    gate = QuietGate()
    collector = AlbumCollector(sleep=gate.sleep)
    h.dispatcher["albums"] = collector
    return collector, gate


async def to_veo_prompt(h: Harness, user) -> None:
    await h.send(user, "/start")
    await h.press(user, tr("en", "job_text_to_video"))
    await h.press(user, tr("en", "model_button", name="Veo 3.1 Fast", price=VEO_PRICE))
    await h.press(user, tr("en", "btn_continue", price=VEO_PRICE))


def stored(h: Harness, path: str) -> bytes:
    media: LocalMediaStore = h.media
    return media.file_path(path).read_bytes()


async def test_an_album_is_collected_up_to_the_limit_and_answered_once(harness):
    h = harness
    ann = h.user(3101)
    collector, gate = gated(h)
    await to_veo_prompt(h, ann)
    question = h.screen(ann)
    assert question.text == tr("en", "ask_prompt_images", min=1, max=5000, photos="2 photos")

    photos = [make_png(32, 18, f"frame{i}") for i in range(3)]
    replies = []
    for i, data in enumerate(photos):  # three updates sharing one media_group_id
        replies += await h.feed(h.updates.photo(
            ann, data, media_group_id="album-1",
            caption="the boat drifts from dawn to dusk" if i == 0 else None))
    assert replies == []  # nothing is said while the album is still arriving
    assert collector.pending == 1  # one reply waiting, for the whole group
    gate.opened.set()  # the group's messages stopped coming
    await collector.settle()

    card = h.screen(ann)
    assert card.text.startswith(tr("en", "album_received", n=2) + "\n"
                                + tr("en", "album_too_many", name="Veo 3.1 Fast", max=2, photos="2 photos"))
    assert tr("en", "card_photos", n=2) in card.text
    assert "the boat drifts from dawn to dusk" in card.text
    await h.press(ann, tr("en", "btn_generate", price=VEO_PRICE))
    [row] = await h.generations(3101)
    assert (row["model_key"], row["cost"], row["prompt"]) == (
        "veo31_fast", VEO_PRICE, "the boat drifts from dawn to dusk")
    options = row["options"]
    assert options["_api"] == "veo" and len(options["_source_paths"]) == 2
    assert [stored(h, p) for p in options["_source_paths"]] == photos[:2]  # in the order sent


async def test_a_second_album_replaces_the_first_and_a_single_photo_replaces_an_album(harness):
    h = harness
    ann = h.user(3102)
    collector, gate = gated(h)
    await to_veo_prompt(h, ann)
    await h.send(ann, "a kite over the sea")
    for group, n in (("g1", 2), ("g2", 1)):
        for i in range(n):
            await h.feed(h.updates.photo(ann, make_png(16, 16, f"{group}{i}"), media_group_id=group))
    gate.opened.set()
    await collector.settle()
    assert tr("en", "card_photo") in h.screen(ann).text  # only g2's one photo is left
    await h.feed(h.updates.photo(ann, make_png(16, 16, "single")))
    await h.press(ann, tr("en", "btn_generate", price=VEO_PRICE))
    [row] = await h.generations(3102)
    assert stored(h, row["options"]["_source_path"]) == make_png(16, 16, "single")
    assert "_source_paths" not in row["options"]


async def test_the_same_entry_runs_text_to_video_without_pictures(harness):
    h = harness
    ann = h.user(3103)
    await to_veo_prompt(h, ann)
    await h.send(ann, "a paper boat in the rain")
    card = h.screen(ann)
    assert tr("en", "card_photo") not in card.text
    await h.press(ann, tr("en", "btn_generate", price=VEO_PRICE))
    [row] = await h.generations(3103)
    options = dict(row["options"])
    assert options.pop("_media_token")  # the random part of the row's object names
    assert options == {"_api": "veo", "aspect_ratio": "16:9", "resolution": "720p",
                       "enableTranslation": True}


async def to_talking_photo(h: Harness, user) -> None:
    """The talking-photo section's Kling Avatar: "from" the shortest recording's price; before
    a recording is sent the price is the longest the model takes."""
    await h.send(user, "/start")
    await h.press(user, tr("en", "job_talking_photo"))
    rule = TALK.audio_input
    await h.press(user, tr("en", "model_button", name=TALK.name,
                           price=int(PER_SECOND * rule.min_seconds)))
    await h.press(user, tr("en", "btn_continue", price=int(PER_SECOND * rule.max_seconds)))


async def test_a_voice_message_is_the_audio_input_and_its_seconds_the_price(harness):
    h = harness
    ann = h.user(3104)
    await to_talking_photo(h, ann)
    assert h.screen(ann).text == tr("en", "ask_photo", name=TALK.name, mb=10)
    face = make_png(24, 24, "face")
    await h.feed(h.updates.photo(ann, face, caption="she says hello"))
    assert h.screen(ann).text == tr("en", "ask_audio", name=TALK.name, limit=10)

    await h.send(ann, "not a recording")
    assert h.screen(ann).text.startswith(tr("en", "err_expect_audio"))
    await h.feed(h.updates.voice(ann, b"x" * (11 * 1024 * 1024)))
    assert h.screen(ann).text.startswith(tr("en", "err_audio_big", size="11.0", limit=10))
    await h.feed(h.updates.voice(ann, b"OggS" + b"\x00" * 200, duration=16))
    assert h.screen(ann).text.startswith(tr("en", "err_audio_long", seconds=16, max=15))
    voice = b"OggS" + b"\x00" * 200
    await h.feed(h.updates.voice(ann, voice, duration=3))
    card = h.screen(ann)
    assert tr("en", "card_audio") in card.text and tr("en", "card_photo") in card.text

    price = int(PER_SECOND * 3)  # a 3 s recording
    await h.press(ann, tr("en", "btn_generate", price=price))
    [row] = await h.generations(3104)
    assert (row["model_key"], row["cost"]) == ("kling_avatar", price)
    options = row["options"]
    assert options["_audio_mime"] == "audio/ogg" and stored(h, options["_audio_path"]) == voice
    assert stored(h, options["_source_path"]) == face


async def test_a_recording_the_service_refuses_at_generate_is_asked_for_again(harness):
    h = harness
    ann = h.user(3105)
    await to_talking_photo(h, ann)
    await h.feed(h.updates.photo(ann, make_png(24, 24, "face"), caption="hello again"))
    await h.feed(h.updates.voice(ann, b"OggS" + b"\x00" * 20, duration=2))
    # The recording is refused by the service at Generate (here: a type the model does not take).
    draft = (await h.dispatcher.fsm.get_context(h.bot, ann.id, ann.id).get_data())["draft"]
    draft["audio"] = {"file_id": "none", "mime": "audio/flac", "name": "a.flac", "size": 10,
                      "seconds": 2}
    await h.dispatcher.fsm.get_context(h.bot, ann.id, ann.id).update_data(draft=draft)
    h.bot.session.add_file("none", b"fLaC" + b"\x00" * 6)
    await h.press(ann, tr("en", "btn_generate", price=int(PER_SECOND * 2)))
    assert h.screen(ann).text == (tr("en", "err_audio_source") + "\n\n"
                                  + tr("en", "ask_audio", name=TALK.name, limit=10))
    assert await h.generations(3105) == []  # nothing charged
