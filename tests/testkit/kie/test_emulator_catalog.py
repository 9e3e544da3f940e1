"""Every 2026 Market model and mode: the exact KIE request, written here by hand from the field
lists of ../shared/reference/kie-market-2026.md (and the docs pages it cites), is what the catalog
builds, and the emulator accepts it over real HTTP; each documented violation is refused."""

from __future__ import annotations

import httpx
import pytest

from kie_client.catalog import Catalog
from kie_client.providers import VeoProvider
from testkit.kie import KieEmulator, StateDelays

KEY = "emu-catalog-key"
P = "a red fox in fresh snow, morning light"
IMG = "https://tempfile.redpandaai.co/kieai/1/images/a.png"
IMG2 = "https://tempfile.redpandaai.co/kieai/1/images/b.png"
AUD = "https://tempfile.redpandaai.co/kieai/1/audio/voice.mp3"
CALLBACK = "https://bot.example/kie/callback/1"

# (catalog key, options chosen, images, audio, the exact KIE input)
REQUESTS = [
    ("nano_banana_2", {"aspect_ratio": "16:9", "resolution": "2K"}, [], [],
     {"prompt": P, "aspect_ratio": "16:9", "resolution": "2K", "output_format": "png"}),
    ("nano_banana_2_edit", {"resolution": "4K"}, [IMG, IMG2], [],
     {"prompt": P, "image_input": [IMG, IMG2], "aspect_ratio": "auto", "resolution": "4K",
      "output_format": "png"}),
    ("nano_banana_pro", {"output_format": "jpg", "aspect_ratio": "21:9"}, [], [],
     {"prompt": P, "aspect_ratio": "21:9", "resolution": "1K", "output_format": "jpg"}),
    ("nano_banana_pro_edit", {}, [IMG], [],
     {"prompt": P, "image_input": [IMG], "aspect_ratio": "auto", "resolution": "1K",
      "output_format": "png"}),
    ("seedream_5_lite_t2i", {"quality": "high"}, [], [],
     {"prompt": P, "aspect_ratio": "1:1", "quality": "high"}),
    ("seedream_5_lite_i2i", {"aspect_ratio": "3:2"}, [IMG], [],
     {"prompt": P, "image_urls": [IMG], "aspect_ratio": "3:2", "quality": "basic"}),
    ("gpt_image_2_t2i", {"aspect_ratio": "9:16", "resolution": "2K"}, [], [],
     {"prompt": P, "aspect_ratio": "9:16", "resolution": "2K"}),
    ("gpt_image_2_i2i", {}, [IMG, IMG2, IMG], [],
     {"prompt": P, "input_urls": [IMG, IMG2, IMG], "aspect_ratio": "1:1", "resolution": "1K"}),
    ("kling_30_t2v", {"duration": "15", "mode": "pro", "sound": True}, [], [],
     {"prompt": P, "aspect_ratio": "16:9", "duration": "15", "mode": "pro", "sound": True,
      "multi_shots": False}),
    ("kling_30_i2v", {"mode": "4K"}, [IMG, IMG2], [],
     {"prompt": P, "image_urls": [IMG, IMG2], "duration": "5", "mode": "4K", "sound": False,
      "multi_shots": False}),
    ("seedance_15_pro_t2v", {"resolution": "1080p", "duration": "12", "generate_audio": True}, [], [],
     {"prompt": P, "aspect_ratio": "16:9", "resolution": "1080p", "duration": "12",
      "generate_audio": True, "fixed_lens": False}),
    ("seedance_15_pro_i2v", {"fixed_lens": True}, [IMG, IMG2], [],
     {"prompt": P, "input_urls": [IMG, IMG2], "aspect_ratio": "16:9", "resolution": "720p",
      "duration": "4", "generate_audio": False, "fixed_lens": True}),
    ("seedance_2_fast_t2v", {"duration": 15, "resolution": "720p"}, [], [],
     {"prompt": P, "aspect_ratio": "16:9", "resolution": "720p", "duration": 15, "generate_audio": True}),
    ("seedance_2_fast_i2v", {"generate_audio": False}, [IMG], [],
     {"prompt": P, "first_frame_url": IMG, "aspect_ratio": "adaptive", "resolution": "480p",
      "duration": 5, "generate_audio": False}),
    ("infinitalk", {"resolution": "720p"}, [IMG], [AUD],
     {"prompt": P, "image_url": IMG, "audio_url": AUD, "resolution": "720p"}),
    ("kling_avatar", {}, [IMG], [AUD], {"prompt": P, "image_url": IMG, "audio_url": AUD}),
    ("kling_avatar_pro", {}, [IMG], [AUD], {"prompt": P, "image_url": IMG, "audio_url": AUD}),
    ("topaz_upscale", {"upscale_factor": "4"}, [IMG], [], {"image_url": IMG, "upscale_factor": "4"}),
    ("recraft_remove_bg", {}, [IMG], [], {"image": IMG}),
]

# (KIE model, the input, a fragment of KIE's refusal) — limits the reference documents.
NB2 = {"prompt": P, "aspect_ratio": "1:1", "resolution": "1K", "output_format": "png"}
KLING3 = {"prompt": P, "duration": "5", "mode": "std", "sound": False, "multi_shots": False}
SEEDANCE15 = {"prompt": P, "aspect_ratio": "16:9", "resolution": "720p", "duration": "4",
              "generate_audio": False}
SEEDANCE2 = {"prompt": P, "aspect_ratio": "16:9", "duration": 5}
VIOLATIONS = [
    ("nano-banana-2", {**NB2, "image_input": [IMG] * 15}, "at most 14"),
    ("nano-banana-2", {**NB2, "aspect_ratio": "7:5"}, "aspect_ratio must be one of"),
    ("nano-banana-2", {**NB2, "resolution": "8K"}, "resolution must be one of 1K, 2K, 4K"),
    ("nano-banana-2", {**NB2, "prompt": "x" * 20001}, "too long"),
    ("nano-banana-2", {**NB2, "output_format": "gif"}, "output_format must be one of png, jpg"),
    ("nano-banana-pro", {**NB2, "image_input": [IMG] * 9}, "at most 8"),
    ("nano-banana-pro", {**NB2, "aspect_ratio": "1:4"}, "aspect_ratio must be one of"),
    ("nano-banana-pro", {**NB2, "prompt": "x" * 10001}, "too long"),
    ("seedream/5-lite-image-to-image", {"prompt": P, "aspect_ratio": "1:1", "quality": "basic"},
     "image_urls is required"),
    ("seedream/5-lite-image-to-image",
     {"prompt": P, "image_urls": [IMG] * 15, "aspect_ratio": "1:1", "quality": "basic"}, "at most 14"),
    ("seedream/5-lite-text-to-image", {"prompt": "ab", "aspect_ratio": "1:1", "quality": "basic"},
     "at least 3"),
    ("gpt-image-2-image-to-image", {"prompt": P, "input_urls": [IMG] * 17}, "at most 16"),
    ("gpt-image-2-image-to-image", {"prompt": P}, "input_urls is required"),
    ("gpt-image-2-text-to-image", {"prompt": P, "aspect_ratio": "2:3"}, "aspect_ratio must be one of"),
    ("gpt-image-2-text-to-image", {"prompt": "x" * 20001}, "too long"),
    ("kling-3.0/video", {**KLING3, "duration": "16"}, "duration must be one of"),
    ("kling-3.0/video", {**KLING3, "duration": 5}, "duration must be one of"),
    ("kling-3.0/video", {**KLING3, "mode": "ultra"}, "mode must be one of std, pro, 4K"),
    ("kling-3.0/video", {**KLING3, "image_urls": [IMG] * 3}, "at most 2"),
    ("kling-3.0/video", {k: v for k, v in KLING3.items() if k != "sound"}, "sound is required"),
    ("kling-3.0/video", {**KLING3, "aspect_ratio": "4:3"}, "aspect_ratio must be one of 16:9, 9:16, 1:1"),
    ("bytedance/seedance-1.5-pro", {**SEEDANCE15, "duration": "5"}, "duration must be one of 4, 8, 12"),
    ("bytedance/seedance-1.5-pro", {**SEEDANCE15, "input_urls": [IMG] * 3}, "at most 2"),
    ("bytedance/seedance-1.5-pro", {**SEEDANCE15, "resolution": "4K"}, "resolution must be one of"),
    ("bytedance/seedance-1.5-pro", {**SEEDANCE15, "prompt": "x" * 2501}, "too long"),
    ("bytedance/seedance-2-fast", {**SEEDANCE2, "duration": "5"}, "duration must be one of"),
    ("bytedance/seedance-2-fast", {**SEEDANCE2, "duration": 16}, "duration must be one of"),
    ("bytedance/seedance-2-fast", {**SEEDANCE2, "resolution": "1080p"}, "resolution must be one of 480p, 720p"),
    ("bytedance/seedance-2-fast", {**SEEDANCE2, "first_frame_url": [IMG]}, "single URL string"),
    ("bytedance/seedance-2-fast", {k: v for k, v in SEEDANCE2.items() if k != "aspect_ratio"},
     "aspect_ratio is required"),
    ("infinitalk/from-audio", {"prompt": P, "image_url": IMG, "resolution": "480p"}, "audio_url is required"),
    ("infinitalk/from-audio", {"prompt": P, "image_url": IMG, "audio_url": AUD, "resolution": "1080p"},
     "resolution must be one of 480p, 720p"),
    ("kling/ai-avatar-pro", {"prompt": P, "audio_url": AUD}, "image_url is required"),
    ("kling/ai-avatar-standard", {"prompt": P, "image_url": IMG, "audio_url": [AUD]}, "single URL string"),
    ("topaz/image-upscale", {"image_url": IMG, "upscale_factor": "3"}, "upscale_factor must be one of"),
    ("topaz/image-upscale", {"image_url": IMG, "upscale_factor": "2", "prompt": P}, "prompt is not a field"),
    ("recraft/remove-background", {}, "image is required"),
    ("veo3_fast", {"prompt": P, "model": "veo3_fast"}, "is not supported"),  # its own routes
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


@pytest.fixture
async def http():
    emulator = KieEmulator(KEY, delays=StateDelays(0.03, 0.03, 0.03), missing_field_code=422)
    await emulator.start()
    try:
        async with httpx.AsyncClient(base_url=emulator.market_url,
                                     headers={"Authorization": f"Bearer {KEY}"}) as client:
            yield client
    finally:
        await emulator.stop()


def test_every_new_market_model_has_a_request_here(catalog):
    original = {"seedream_45_t2i", "seedream_45_edit", "flux2_pro_t2i", "flux2_pro_i2i", "kling_26_t2v",
                "kling_26_i2v", "bytedance_v1pro_t2v", "bytedance_v1pro_i2v"}  # tests/unit/kie
    market = {m.key for m in catalog.models() if m.api == "market"}
    assert market - original == {key for key, *_ in REQUESTS}


@pytest.mark.parametrize(("key", "options", "images", "audio", "expected"), REQUESTS,
                         ids=[r[0] for r in REQUESTS])
async def test_the_exact_request_is_built_and_accepted(catalog, http, key, options, images, audio, expected):
    built = catalog.build_input(key, P, options, images, audio)
    assert built == expected
    assert [type(v) for v in built.values()] == [type(v) for v in expected.values()]
    answer = (await http.post("/api/v1/jobs/createTask", json={
        "model": catalog.get(key).kie_model, "input": built, "callBackUrl": CALLBACK})).json()
    assert answer["code"] == 200, answer
    record = (await http.get("/api/v1/jobs/recordInfo", params={"taskId": answer["data"]["taskId"]})).json()
    assert record["data"]["model"] == catalog.get(key).kie_model and record["data"]["state"] in (
        "waiting", "queuing", "generating", "success")


@pytest.mark.parametrize(("model", "input", "reason"), VIOLATIONS, ids=[f"{m}:{r}" for m, _, r in VIOLATIONS])
async def test_each_documented_violation_is_refused(http, model, input, reason):
    answer = (await http.post("/api/v1/jobs/createTask", json={"model": model, "input": input})).json()
    assert answer["code"] == 422 and reason in answer["msg"], answer


def test_veo_bodies_carry_the_model_and_generation_type(catalog):
    """Veo's body is built by the same catalog (one entry per model, photos optional); the Veo
    provider (api="veo") adds the generation type by whether photos were given."""
    text = catalog.build_input("veo31_fast", P, {"resolution": "1080p"})
    assert text == {"prompt": P, "model": "veo3_fast", "aspect_ratio": "16:9", "resolution": "1080p",
                    "enableTranslation": True}
    frames = catalog.build_input("veo31_lite", P, {"aspect_ratio": "Auto"}, [IMG, IMG2])
    assert frames == {"prompt": P, "model": "veo3_lite", "imageUrls": [IMG, IMG2],
                      "aspect_ratio": "Auto", "resolution": "720p", "enableTranslation": True}
    spec = catalog.get("veo31_lite")
    assert VeoProvider.body(catalog.get("veo31_fast"), text, None)["generationType"] == "TEXT_2_VIDEO"
    assert VeoProvider.body(spec, frames, None)["generationType"] == "FIRST_AND_LAST_FRAMES_2_VIDEO"
    assert {catalog.get(k).api for k in ("veo31_lite", "veo31_fast", "veo31_quality")} == {"veo"}
