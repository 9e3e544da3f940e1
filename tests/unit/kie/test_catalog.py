"""Catalog: every model and option value through build_input, defaults, prices, errors."""

from __future__ import annotations

import pytest

from kie_client.catalog import (
    MODELS,
    Catalog,
    CatalogError,
    ImageInputError,
    InvalidOptionError,
    InvalidPromptError,
    Kind,
    MissingFieldError,
    Mode,
    UnknownModelError,
    validate_input,
)

IMG = "https://tempfile.redpandaai.co/kieai/1/images/a.png"


def _images(spec, n=None):
    if spec.image_input is None:
        return ()
    return [f"{IMG}?{i}" for i in range(n or spec.image_input.min_count)]


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


ORIGINAL = ["seedream_45_t2i", "seedream_45_edit", "flux2_pro_t2i", "flux2_pro_i2i",
            "kling_26_t2v", "kling_26_i2v", "bytedance_v1pro_t2v", "bytedance_v1pro_i2v"]


def test_original_eight_models_keep_seed_prices(catalog):
    keys = [m.key for m in catalog.models()]
    assert set(ORIGINAL) <= set(keys) and len(keys) == len(set(keys)) > len(ORIGINAL)
    assert all(catalog.enabled(key) for key in ORIGINAL)
    # Veo 3.1: one entry per model (text or photos), served by the Veo provider.
    veo = [m for m in catalog.models() if m.api == "veo"]
    assert [m.key for m in veo] == ["veo31_fast", "veo31_lite", "veo31_quality"]
    assert all(m.image_input.min_count == 0 and m.image_input.max_count == 2 for m in veo)
    prices = {m.key: catalog.price(m.key, {}) for m in catalog.models()}
    assert prices["seedream_45_t2i"] == 8 and prices["flux2_pro_t2i"] == 12
    assert prices["kling_26_t2v"] == 25 and prices["bytedance_v1pro_i2v"] == 30
    assert prices["seedream_45_edit"] == 8 and prices["flux2_pro_i2i"] == 12
    assert prices["kling_26_i2v"] == 25 and prices["bytedance_v1pro_t2v"] == 30
    assert catalog.get("seedream_45_t2i").name == "Seedream 4.5"
    assert catalog.get("seedream_45_edit").name == "Seedream 4.5 Edit"


def test_models_by_kind_and_modes(catalog):
    images = catalog.models(Kind.IMAGE)
    assert {m.mode for m in images} == {Mode.T2I, Mode.I2I}
    assert {"seedream_45_t2i", "flux2_pro_i2i", "nano_banana_2_edit", "topaz_upscale"} <= {m.key for m in images}
    videos = catalog.models("video")
    assert [m.key for m in videos] == [m.key for m in MODELS if m.kind is Kind.VIDEO]
    assert {m.mode for m in videos} == {Mode.T2V, Mode.I2V} and not set(images) & set(videos)
    with pytest.raises(InvalidOptionError, match="kind must be one of image, video"):
        catalog.models("audio")


ALL_VALUES = [
    (spec.key, opt.name, value)
    for spec in MODELS
    for opt in spec.options
    for value in opt.values
]


@pytest.mark.parametrize(("key", "name", "value"), ALL_VALUES, ids=[f"{k}-{n}-{v}" for k, n, v in ALL_VALUES])
def test_every_option_value_reaches_kie_input(catalog, key, name, value):
    spec = catalog.get(key)
    audio = [f"{IMG}.mp3"] if spec.audio_input else ()
    built = catalog.build_input(key, "a red fox in the snow", {name: value}, _images(spec), audio)
    opt = spec.option(name)
    assert built[opt.kie_field] == value
    assert type(built[opt.kie_field]) is type(value)
    validate_input(spec.kie_model, built)  # what we build, KIE's rules accept


def test_defaults_fill_every_required_field(catalog):
    assert catalog.build_input("flux2_pro_t2i", "a lighthouse", {}) == {
        "prompt": "a lighthouse", "aspect_ratio": "1:1", "resolution": "1K",
    }
    assert catalog.build_input("kling_26_t2v", "waves", None) == {
        "prompt": "waves", "aspect_ratio": "1:1", "duration": "5", "sound": False,
    }
    assert catalog.defaults("bytedance_v1pro_t2v") == {
        "aspect_ratio": "16:9", "resolution": "720p", "duration": "5", "camera_fixed": False,
    }


def test_image_field_shapes(catalog):
    assert catalog.build_input("bytedance_v1pro_i2v", "move", {}, [IMG])["image_url"] == IMG
    assert catalog.build_input("kling_26_i2v", "move", {}, [IMG])["image_urls"] == [IMG]
    assert catalog.build_input("seedream_45_edit", "edit", {}, [IMG, IMG])["image_urls"] == [IMG, IMG]
    assert catalog.build_input("flux2_pro_i2i", "edit", {}, [IMG])["input_urls"] == [IMG]
    built = catalog.build_input("bytedance_v1pro_i2v", "move", {}, [IMG])
    assert "aspect_ratio" not in built and built["enable_safety_checker"] is True
    assert "aspect_ratio" not in catalog.build_input("kling_26_i2v", "move", {}, [IMG])


@pytest.mark.parametrize(
    ("key", "given", "field", "expected"),
    [
        ("kling_26_t2v", {"duration": 10}, "duration", "10"),
        ("kling_26_t2v", {"duration": 10.0}, "duration", "10"),
        ("kling_26_t2v", {"sound": "true"}, "sound", True),
        ("kling_26_t2v", {"sound": "no"}, "sound", False),
        ("kling_26_t2v", {"sound": 1}, "sound", True),
        ("flux2_pro_t2i", {"resolution": "2k"}, "resolution", "2K"),
        ("seedream_45_t2i", {"quality": "High"}, "quality", "high"),
        ("bytedance_v1pro_t2v", {"camera_fixed": True}, "camera_fixed", True),
    ],
)
def test_natural_value_forms_are_coerced(catalog, key, given, field, expected):
    spec = catalog.get(key)
    assert catalog.build_input(key, "prompt text", given, _images(spec))[field] == expected


@pytest.mark.parametrize(
    ("key", "given", "field", "allowed"),
    [
        ("kling_26_t2v", {"duration": 7}, "duration", "5, 10"),
        ("kling_26_t2v", {"duration": True}, "duration", "5, 10"),
        ("kling_26_t2v", {"aspect_ratio": "4:3"}, "aspect_ratio", "1:1, 16:9, 9:16"),
        ("kling_26_t2v", {"sound": "loud"}, "sound", "false, true"),
        ("flux2_pro_t2i", {"resolution": "4K"}, "resolution", "1K, 2K"),
        ("seedream_45_t2i", {"quality": None}, "quality", "basic, high"),
        ("bytedance_v1pro_t2v", {"resolution": 720}, "resolution", "480p, 720p, 1080p"),
    ],
)
def test_bad_option_names_field_and_allowed_values(catalog, key, given, field, allowed):
    with pytest.raises(InvalidOptionError) as info:
        catalog.build_input(key, "prompt text", given)
    err = info.value
    assert err.field == field and allowed in str(err) and field in str(err)
    assert err.value == given[field]


def test_unknown_option_name_is_rejected(catalog):
    with pytest.raises(InvalidOptionError, match="no option 'steps'") as info:
        catalog.normalise_options("seedream_45_t2i", {"steps": 30})
    assert info.value.field == "steps" and "aspect_ratio" in str(info.value)
    with pytest.raises(InvalidOptionError, match="options: none|no option"):
        catalog.price("kling_26_i2v", {"aspect_ratio": "1:1"})


def test_unknown_model(catalog):
    with pytest.raises(UnknownModelError, match="unknown model 'midjourney'") as info:
        catalog.get("midjourney")
    assert isinstance(info.value, CatalogError) and "seedream_45_t2i" in str(info.value)
    with pytest.raises(UnknownModelError):
        catalog.build_input("nope", "x", {})
    with pytest.raises(UnknownModelError):
        validate_input("nope/model", {"prompt": "x"})


@pytest.mark.parametrize(
    ("key", "options", "price"),
    [
        ("kling_26_t2v", {"duration": "10"}, 50),
        ("kling_26_t2v", {"sound": True}, 50),
        ("kling_26_t2v", {"duration": "10", "sound": True}, 100),
        ("kling_26_i2v", {"duration": 10, "sound": True}, 100),
        ("flux2_pro_t2i", {"resolution": "2K"}, 17),
        ("flux2_pro_i2i", {"resolution": "1K"}, 12),
        ("bytedance_v1pro_i2v", {"duration": "10"}, 60),
        ("bytedance_v1pro_t2v", {"resolution": "1080p"}, 60),
        ("bytedance_v1pro_t2v", {"resolution": "1080p", "duration": "10"}, 120),
        ("bytedance_v1pro_t2v", {"resolution": "480p"}, 30),
        ("seedream_45_t2i", {"quality": "high"}, 8),
    ],
)
def test_price_multipliers(catalog, key, options, price):
    assert catalog.price(key, options) == price


def test_price_overrides_keep_multipliers():
    catalog = Catalog(price_overrides={"kling_26_t2v": 40, "flux2_pro_t2i": 10})
    assert catalog.price("kling_26_t2v", {}) == 40
    assert catalog.price("kling_26_t2v", {"duration": 10, "sound": True}) == 160
    assert catalog.price("flux2_pro_t2i", {"resolution": "2K"}) == 14
    assert catalog.price("seedream_45_t2i", {}) == 8
    assert Catalog().price("kling_26_t2v", {}) == 25  # overrides are per instance


@pytest.mark.parametrize("bad", [{"nope": 3}, {"kling_26_t2v": -1}, {"kling_26_t2v": 2.5}, {"kling_26_t2v": True}])
def test_bad_overrides(bad):
    with pytest.raises(CatalogError):
        Catalog(price_overrides=bad)


@pytest.mark.parametrize(
    ("key", "minimum", "maximum"),
    [(s.key, s.prompt_min, s.prompt_max) for s in MODELS if s.prompt],
)
def test_prompt_limits(catalog, key, minimum, maximum):
    assert catalog.validate_prompt(key, "  " + "x" * maximum + "\n") == "x" * maximum
    with pytest.raises(InvalidPromptError, match="too long") as info:
        catalog.validate_prompt(key, "x" * (maximum + 1))
    assert (info.value.min, info.value.max, info.value.length) == (minimum, maximum, maximum + 1)
    with pytest.raises(InvalidPromptError, match="blank"):
        catalog.validate_prompt(key, " \n\t ")
    with pytest.raises(InvalidPromptError, match="must be a string"):
        catalog.validate_prompt(key, None)


def test_flux_needs_three_characters(catalog):
    with pytest.raises(InvalidPromptError, match="at least 3") as info:
        catalog.build_input("flux2_pro_t2i", "ab", {})
    assert info.value.field == "prompt"
    assert catalog.validate_prompt("flux2_pro_t2i", "abc") == "abc"
    assert catalog.validate_prompt("seedream_45_t2i", "a") == "a"


def test_prompt_limit_values():
    limits = {s.key: (s.prompt_min, s.prompt_max) for s in MODELS}
    assert limits["seedream_45_t2i"] == (1, 3000) and limits["flux2_pro_i2i"] == (3, 5000)
    assert limits["kling_26_i2v"] == (1, 1000) and limits["bytedance_v1pro_t2v"] == (1, 10000)


def test_image_rules(catalog):
    rules = {s.key: s.image_input for s in MODELS}
    assert (rules["seedream_45_edit"].max_count, rules["flux2_pro_i2i"].max_count) == (14, 8)
    assert rules["kling_26_i2v"].max_count == 1 and rules["bytedance_v1pro_i2v"].as_list is False
    assert rules["seedream_45_t2i"] is None
    assert rules["flux2_pro_i2i"].max_bytes == 10 * 1024 * 1024
    with pytest.raises(ImageInputError, match="at least 1") as info:
        catalog.build_input("kling_26_i2v", "move", {})
    assert info.value.field == "image_urls"
    with pytest.raises(ImageInputError, match="at most 1"):
        catalog.build_input("bytedance_v1pro_i2v", "move", {}, [IMG, IMG])
    with pytest.raises(ImageInputError, match="at most 8"):
        catalog.build_input("flux2_pro_i2i", "move", {}, [IMG] * 9)
    catalog.build_input("seedream_45_edit", "edit", {}, [IMG] * 14)
    with pytest.raises(ImageInputError, match="takes no input images"):
        catalog.build_input("seedream_45_t2i", "cat", {}, [IMG])
    with pytest.raises(ImageInputError, match="http"):
        catalog.build_input("seedream_45_edit", "edit", {}, ["file:///etc/passwd"])


def test_check_image(catalog):
    catalog.check_image("kling_26_i2v", mime_type="image/webp", size=10 * 1024 * 1024)
    with pytest.raises(ImageInputError, match="jpeg, png, webp"):
        catalog.check_image("kling_26_i2v", mime_type="image/gif", size=10)
    with pytest.raises(ImageInputError, match="10 MB"):
        catalog.check_image("seedream_45_edit", mime_type="image/png", size=10 * 1024 * 1024 + 1)
    with pytest.raises(ImageInputError):
        catalog.check_image("seedream_45_t2i", mime_type="image/png", size=10)


def test_validate_input_missing_required_fields():
    with pytest.raises(MissingFieldError, match="^aspect_ratio is required$") as info:
        validate_input("flux-2/pro-text-to-image", {"prompt": "a lighthouse", "resolution": "1K"})
    assert info.value.field == "aspect_ratio" and "1:1" in info.value.allowed
    with pytest.raises(MissingFieldError, match="^prompt is required$"):
        validate_input("seedream/4.5-text-to-image", {"aspect_ratio": "1:1", "quality": "basic"})
    with pytest.raises(MissingFieldError, match="^sound is required$"):
        validate_input("kling-2.6/text-to-video", {"prompt": "p", "aspect_ratio": "1:1", "duration": "5"})
    with pytest.raises(MissingFieldError, match="^image_url is required$"):
        validate_input("bytedance/v1-pro-image-to-video", {"prompt": "p"})
    # Bytedance documents every option as optional.
    validate_input("bytedance/v1-pro-text-to-video", {"prompt": "p"})


def test_validate_input_is_strict_about_types():
    base = {"prompt": "p", "aspect_ratio": "1:1", "sound": False}
    with pytest.raises(InvalidOptionError, match="duration must be one of 5, 10") as info:
        validate_input("kling-2.6/text-to-video", {**base, "duration": 5})
    assert isinstance(info.value, CatalogError) and not isinstance(info.value, MissingFieldError)
    with pytest.raises(InvalidOptionError, match="sound must be one of false, true"):
        validate_input("kling-2.6/text-to-video", {**base, "duration": "5", "sound": "false"})
    with pytest.raises(InvalidOptionError, match="negative_prompt is not a field"):
        validate_input("kling-2.6/text-to-video", {**base, "duration": "5", "negative_prompt": "x"})
    with pytest.raises(ImageInputError, match="single URL string"):
        validate_input("bytedance/v1-pro-image-to-video", {"prompt": "p", "image_url": [IMG]})
    with pytest.raises(ImageInputError, match="array"):
        validate_input("kling-2.6/image-to-video", {"prompt": "p", "image_urls": IMG, "duration": "5", "sound": False})
    with pytest.raises(InvalidOptionError, match="seed must be an integer"):
        validate_input("bytedance/v1-pro-text-to-video", {"prompt": "p", "seed": -2})
    validate_input("bytedance/v1-pro-text-to-video", {"prompt": "p", "seed": -1, "nsfw_checker": True})
    with pytest.raises(InvalidPromptError, match="too long"):
        validate_input("kling-2.6/text-to-video", {**base, "duration": "5", "prompt": "x" * 1001})
    with pytest.raises(CatalogError, match="input must be a JSON object"):
        validate_input("kling-2.6/text-to-video", ["prompt"])  # type: ignore[arg-type]


def test_specs_are_frozen_data():
    spec = MODELS[0]
    with pytest.raises(AttributeError):
        spec.base_price = 1  # type: ignore[misc]


@pytest.mark.parametrize(("prompt", "problem"), [
    ("\u200b", "invisible"), ("\u200b\u200c\u200d\u2060\ufeff", "invisible"),
    ("\u3164\u115f", "invisible"), ("\u2800", "invisible"), ("\u0301", "invisible"),
    ("a\x00b", "control"), ("a\x7fb", "control"), ("a\x85b", "control"), ("a\ud800b", "control"),
    ("a\x1b[1m", "control"),
    ("a lighthouse", None), ("line one\nline two\tand\r\nthree", None), ("🙂", None),
    ("日本", None), ("a\u200bb", None), ("!", None),
])
def test_prompts_need_a_visible_character_and_no_control_characters(prompt, problem):
    from kie_client.catalog import PromptCharactersError

    catalog = Catalog()
    if problem is None:
        assert catalog.validate_prompt("seedream_45_t2i", prompt) == prompt.strip()
        return
    with pytest.raises(PromptCharactersError) as caught:
        catalog.validate_prompt("seedream_45_t2i", prompt)
    assert caught.value.problem == problem and caught.value.field == "prompt"
