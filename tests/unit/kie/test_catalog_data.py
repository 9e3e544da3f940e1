"""The catalog's data files: what they hold, how prices follow them, and how a broken edit is
refused with the file, model and field named."""

from __future__ import annotations

import math
import shutil
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kie_client.catalog import (
    DATA_DIR,
    MODELS,
    Catalog,
    CatalogError,
    Job,
    ModelDisabledError,
    RuntimeOverride,
    load_catalog,
    validate_input,
)

# A ⭐ brings the bot about $0.013 and a KIE credit costs $0.005: a price below credits × 0.385
# would sell under KIE's cost.
CREDIT_IN_STARS = Fraction(5, 13)

GOOD = '''
[[model]]
key = "toy_t2i"
name = "Toy"
kie_model = "toy/text-to-image"
kind = "image"
mode = "t2i"
description = { en = "A toy", ru = "Игрушка" }
prompt = { min = 1, max = 100 }
options = [{ name = "resolution", values = ["1K", "2K"], default = "1K" }]
price = { stars = 4, tiers = [{ when = { resolution = "2K" }, stars = 6 }] }
'''


def _write(tmp_path: Path, text: str, name: str = "toy.toml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_every_job_has_models_and_every_model_speaks_both_languages():
    catalog = Catalog()
    for job in Job:
        assert catalog.models(job=job), job
    for spec in MODELS:
        assert spec.blurb("en") and spec.blurb("ru") and spec.blurb("en") != spec.blurb("ru")
        assert spec.source.endswith(".toml")
    keys = [s.key for s in MODELS]
    assert len(keys) == len(set(keys)) >= 30
    assert {s.api for s in MODELS} == {"market", "veo"}
    assert [s.order for s in MODELS] == sorted(s.order for s in MODELS)


def test_the_issue_models_are_there():
    catalog = Catalog()
    kie = {s.kie_model for s in MODELS}
    assert {"nano-banana-2", "nano-banana-pro", "seedream/5-lite-text-to-image",
            "seedream/5-lite-image-to-image", "gpt-image-2-text-to-image", "gpt-image-2-image-to-image",
            "kling-3.0/video", "bytedance/seedance-1.5-pro", "bytedance/seedance-2-fast",
            "infinitalk/from-audio", "kling/ai-avatar-standard", "kling/ai-avatar-pro",
            "topaz/image-upscale", "recraft/remove-background", "veo3_lite", "veo3_fast", "veo3"} <= kie
    assert catalog.get("nano_banana_2_edit").image_input.max_count == 14
    assert catalog.get("nano_banana_pro_edit").image_input.max_count == 8
    assert catalog.get("gpt_image_2_i2i").image_input.max_count == 16
    assert len(catalog.get("nano_banana_2").option("aspect_ratio").values) == 15
    assert catalog.get("kling_30_t2v").option("duration").values == tuple(str(s) for s in range(3, 16))
    talking = catalog.get("infinitalk").audio_input
    assert (talking.kie_field, talking.max_count, talking.max_seconds) == ("audio_url", 1, 15)


def test_no_price_is_below_kies_cost():
    catalog = Catalog()
    for spec in MODELS:
        rule = spec.rule
        for combo in catalog.combinations(spec.key):
            credits = rule.unit(combo)[1]
            if credits is None:
                continue  # Bytedance V1 Pro: KIE publishes no price
            for pf in rule.factors:
                credits *= pf.multiplier if combo.get(pf.option) == pf.value else 1
            seconds = spec.seconds(combo, 1)
            assert catalog.price(spec.key, combo, audio_seconds=1) >= credits * seconds * CREDIT_IN_STARS, (
                spec.key, combo)


def test_per_second_prices_follow_kie_rates():
    catalog = Catalog()
    # Kling 3.0: 7⭐/s std silent, 13.5⭐/s pro with sound, rounded up once.
    assert catalog.price("kling_30_t2v", {"duration": "5"}) == 35
    assert catalog.price("kling_30_t2v", {"duration": "3", "mode": "pro", "sound": True}) == 41
    assert catalog.price("kling_30_i2v", {"duration": "15", "mode": "4K"}) == 503
    # Seedance 1.5 Pro 480p silent 0.875⭐/s × 4 s = 3.5 → 4⭐.
    assert catalog.price("seedance_15_pro_t2v", {"resolution": "480p"}) == 4
    assert catalog.price("seedance_15_pro_t2v", {"resolution": "1080p", "generate_audio": True,
                                                 "duration": "12"}) == 90
    # Talking photos count the audio's seconds, rounded up, within 1…15; unknown → 15.
    assert catalog.price("infinitalk", {}, audio_seconds=4.2) == 8
    assert catalog.price("infinitalk", {}, audio_seconds=600) == catalog.price("infinitalk", {}) == 23
    assert catalog.price("kling_avatar_pro", {}, audio_seconds=10) == 80
    # Image tiers.
    assert [catalog.price("nano_banana_2", {"resolution": r}) for r in ("1K", "2K", "4K")] == [8, 12, 18]
    assert catalog.price("topaz_upscale", {"upscale_factor": "8"}) == 40


@settings(max_examples=200, deadline=None)
@given(combo=st.sampled_from([(s.key, c) for s in MODELS for c in Catalog().combinations(s.key)]),
       markup=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("3"), places=2),
       override=st.none() | st.integers(min_value=0, max_value=1000))
def test_markup_and_overrides(combo, markup, override):
    key, options = combo
    plain = Catalog()
    marked = Catalog(markup=markup)
    spec = plain.get(key)
    raw = spec.raw_price(plain.normalise_options(key, options), None)
    # Markup multiplies the exact price and rounds up once.
    assert marked.price(key, options) == math.ceil(raw * Fraction(str(markup)))
    assert (marked.price(key, options) >= plain.price(key, options)) == (markup >= 1) or \
        marked.price(key, options) == plain.price(key, options)
    if override is None:
        return
    # A set price (settings or admin) is the price at the defaults; no markup on top.
    by_settings = Catalog({key: override}, markup=markup)
    by_admin = Catalog(markup=markup)
    by_admin.apply_runtime({key: RuntimeOverride(price=override)})
    assert by_settings.price(key, options) == by_admin.price(key, options)
    assert by_settings.base_price(key) == override
    if override:
        assert by_settings.price(key, options) >= math.floor(override * raw / spec.raw_price(
            plain.defaults(key), spec.audio_input.min_seconds if spec.audio_input else None))


def test_longer_never_costs_less():
    catalog = Catalog()
    for spec in MODELS:
        duration = spec.option("duration")
        if duration is None:
            continue
        for combo in catalog.combinations(spec.key):
            longer = [c for c in duration.offered if int(c) > int(combo["duration"])]
            for value in longer:
                assert catalog.price(spec.key, {**combo, "duration": value}) >= catalog.price(spec.key, combo)


def test_admin_overrides_win_and_disable():
    catalog = Catalog({"seedream_45_t2i": 10})
    assert catalog.price_source("seedream_45_t2i") == "settings"
    catalog.apply_runtime({"seedream_45_t2i": RuntimeOverride(price=12, enabled=False),
                           "gone_model": RuntimeOverride(price=1)})  # a removed model is ignored
    assert catalog.price("seedream_45_t2i", {}) == 12 and catalog.price_source("seedream_45_t2i") == "admin"
    assert not catalog.enabled("seedream_45_t2i")
    assert "seedream_45_t2i" not in {s.key for s in catalog.models(enabled_only=True)}
    with pytest.raises(ModelDisabledError, match="Seedream 4.5 is not available"):
        catalog.check_enabled("seedream_45_t2i")
    catalog.get("seedream_45_t2i")  # still known: orders in flight finish
    catalog.apply_runtime({})
    assert catalog.enabled("seedream_45_t2i") and catalog.price("seedream_45_t2i", {}) == 10


def test_unsupported_apis_and_inputs_are_not_sold():
    catalog = Catalog()
    catalog.limit_to(apis=("market",), audio_input=False)
    on_sale = {s.key for s in catalog.models(enabled_only=True)}
    assert "veo31_fast" not in on_sale and "infinitalk" not in on_sale and "kling_30_t2v" in on_sale
    assert catalog.models(job=Job.TALKING_PHOTO, enabled_only=True) == ()
    catalog.limit_to(apis=("market", "veo"), audio_input=True)
    assert {"veo31_fast", "infinitalk"} <= {s.key for s in catalog.models(enabled_only=True)}


def test_an_operator_directory_loads(tmp_path):
    specs = load_catalog(_write(tmp_path, GOOD))
    catalog = Catalog(specs=specs)
    assert catalog.price("toy_t2i", {"resolution": "2K"}) == 6 and catalog.from_price("toy_t2i") == 4
    copy = tmp_path / "copy"
    shutil.copytree(DATA_DIR, copy)
    assert [s.key for s in load_catalog(copy)] == [s.key for s in MODELS]


@pytest.mark.parametrize(("change", "message"), [
    (('default = "1K"', 'default = "3K"'), "toy.toml: toy_t2i: options.resolution.default: '3K' is not one of"),
    (('when = { resolution = "2K" }', 'when = { resolution = "8K" }'),
     "toy.toml: toy_t2i: price.tiers[0].when.resolution: '8K' is not a value of resolution"),
    (('when = { resolution = "2K" }', 'when = { size = "2K" }'),
     "toy.toml: toy_t2i: price.tiers[0].when.size: names no option of the model"),
    (('ru = "Игрушка"', 'de = "Spielzeug"'), "toy.toml: toy_t2i: description: needs one line in each language"),
    (('mode = "t2i"', 'mode = "i2i"'), "toy.toml: toy_t2i: image_input: mode i2i needs an image_input"),
    (('mode = "t2i"', 'mode = "i2i"\nimage_input = { min = 0, max = 2, field = "image_urls" }'),
     "toy.toml: toy_t2i: image_input: mode i2i needs an image_input of at least 1 image"),
    (('mode = "t2i"', 'mode = "t2i"\nimage_input = { min = 1, max = 2, field = "image_urls" }'),
     "toy.toml: toy_t2i: image_input.min: mode t2i makes from text: its pictures are optional"),
    (('kind = "image"', 'kind = "audio"'), "toy.toml: toy_t2i: kind: must be one of image, video"),
    (('kie_model = "toy/text-to-image"', 'kie_model = "toy/text-to-image"\napi = "suno"'),
     "toy.toml: toy_t2i: api: must be one of market, veo"),
    (('price = { stars = 4,', 'price = { stars = -4,'), "toy.toml: toy_t2i: price.stars: must not be negative"),
    (('prompt = { min = 1, max = 100 }', 'prompt = { min = 10, max = 5 }'), "toy.toml: toy_t2i: prompt: needs 1 ≤ min ≤ max"),
    (('key = "toy_t2i"', 'key = "Toy T2I"'), "toy.toml: Toy T2I: key: must be lowercase"),
    (('name = "Toy"', 'name = "Toy"\ncolour = "red"'), "toy.toml: toy_t2i: colour: is not a model field"),
    (('price = {', 'fixed = { watermark = "x" }\nprice = {'),
     "toy.toml: toy_t2i: fixed.watermark: must be declared in `extra`"),
    (('price = { stars = 4,', 'price = { per_second = "resolution", stars = 4,'),
     "toy.toml: toy_t2i: price.per_second: option resolution must hold whole seconds"),
])
def test_a_broken_file_names_the_file_model_and_field(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(CatalogError) as info:
        load_catalog(_write(tmp_path, GOOD.replace(old, new, 1)))
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.field and info.value.field in str(info.value)


def test_optional_pictures_make_one_entry_for_text_and_photos(tmp_path):
    """min = 0 in a text mode (as Veo 3.1's data has it): no photo leaves the field out, one or
    two photos fill it, and KIE's checks take both."""
    text = GOOD.replace('mode = "t2i"', 'mode = "t2i"\nimage_input = { min = 0, max = 2, field = "image_urls" }')
    [spec] = load_catalog(_write(tmp_path, text))
    catalog = Catalog(specs=(spec,))
    alone = catalog.build_input("toy_t2i", "a fox", {})
    assert alone == {"prompt": "a fox", "resolution": "1K"}
    framed = catalog.build_input("toy_t2i", "a fox", {}, ["https://x/a.png", "https://x/b.png"])
    assert framed["image_urls"] == ["https://x/a.png", "https://x/b.png"]
    for body in (alone, framed):
        validate_input("toy/text-to-image", body, (spec,))
    with pytest.raises(CatalogError, match="at most 2"):
        catalog.build_input("toy_t2i", "a fox", {}, ["https://x/a.png"] * 3)


def test_files_are_checked_together(tmp_path):
    _write(tmp_path, GOOD)
    _write(tmp_path, GOOD, "again.toml")
    with pytest.raises(CatalogError, match=r"^(again|toy)\.toml: toy_t2i: key: is used twice"):
        load_catalog(tmp_path)
    (tmp_path / "again.toml").write_text(GOOD.replace('key = "toy_t2i"', 'key = "toy_edit"').replace(
        "max = 100", "max = 200"), encoding="utf-8")
    with pytest.raises(CatalogError, match="shared with toy_(t2i|edit), whose api and prompt limits differ"):
        load_catalog(tmp_path)
    (tmp_path / "again.toml").write_text("[[model]\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="^again.toml: not valid TOML"):
        load_catalog(tmp_path)
    with pytest.raises(CatalogError, match="no model data files"):
        load_catalog(tmp_path / "nowhere")


def test_markup_must_be_positive():
    with pytest.raises(CatalogError, match="PRICE_MARKUP must be more than 0"):
        Catalog(markup=0)
    with pytest.raises(CatalogError, match="PRICE_MARKUP must be a number"):
        Catalog(markup="lots")


def test_an_operator_catalog_prices_and_builds_by_its_own_files(tmp_path):
    """CATALOG_DIR: the operator's copy renames, reprices and adds models; requests are checked
    by that copy's rules, not the packaged ones."""
    shutil.copytree(DATA_DIR, tmp_path, dirs_exist_ok=True)
    seedream = tmp_path / "seedream.toml"
    text = seedream.read_text(encoding="utf-8")
    seedream.write_text(text.replace('price = { stars = 8, credits = 6.5 }', 'price = { stars = 9, credits = 6.5 }')
                        .replace('name = "Seedream 4.5"\n', 'name = "Seedream Classic"\n'), encoding="utf-8")
    _write(tmp_path, GOOD)
    catalog = Catalog(specs=load_catalog(tmp_path))
    assert catalog.get("seedream_45_t2i").name == "Seedream Classic"
    assert catalog.price("seedream_45_t2i", {}) == catalog.price("seedream_45_edit", {}) == 9  # extends
    assert catalog.build_input("toy_t2i", "a cat", {"resolution": "2K"}) == {"prompt": "a cat", "resolution": "2K"}
