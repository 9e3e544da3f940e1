"""The model table: data only (kie-api.md §9.1 for fields, §10 for KIE's costs).

Pricing reasoning (1 KIE credit = $0.005; our ⭐ prices come from origin-spec.md for the four seed
models and keep the same margin for their siblings and option tiers):
- Seedream 4.5 t2i and edit cost KIE the same (~6.5 cr per image, basic or high), so both are 8⭐
  and quality does not change the price.
- FLUX.2 Pro t2i and i2i cost the same: 1K 5 cr, 2K 7 cr. 12⭐ at 1K, ×7/5 at 2K (→ 17⭐).
- Kling 2.6 t2v and i2v cost the same: 55 cr for 5 s silent, ×2 for 10 s, ×2 with sound (both → ×4).
- Bytedance V1 Pro: KIE's price is not published (§10, §13.15); community notes say it is billed
  per second and that 1080p costs about twice 720p. t2v and i2v are assumed equal: 30⭐ for
  480p/720p 5 s, ×2 for 10 s, ×2 for 1080p. Adjust with Catalog(price_overrides=...) once known.
"""

from __future__ import annotations

from fractions import Fraction

from .veo_models import VEO_MODELS
from .spec import ExtraField, ImageInputRule, Kind, ModelSpec, Mode, OptionSpec, PriceFactor

_SEEDREAM_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9")
_FLUX_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3")
_KLING_RATIOS = ("1:1", "16:9", "9:16")
_BYTEDANCE_RATIOS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")

_NSFW = ExtraField("nsfw_checker", "bool")


def _ratio(values: tuple[str, ...], default: str, *, required: bool = True) -> OptionSpec:
    return OptionSpec("aspect_ratio", "Aspect ratio", values, default, "aspect_ratio", "choice", required)


_SEEDREAM_OPTIONS = (
    _ratio(_SEEDREAM_RATIOS, "1:1"),
    OptionSpec("quality", "Quality", ("basic", "high"), "basic", "quality"),
)
_FLUX_OPTIONS = (
    _ratio(_FLUX_RATIOS, "1:1"),
    OptionSpec("resolution", "Resolution", ("1K", "2K"), "1K", "resolution"),
)
_FLUX_FACTORS = (PriceFactor("resolution", "2K", Fraction(7, 5)),)

_KLING_DURATION = OptionSpec("duration", "Duration", ("5", "10"), "5", "duration")
_KLING_SOUND = OptionSpec("sound", "Sound", (False, True), False, "sound", "bool")
_KLING_FACTORS = (
    PriceFactor("duration", "10", Fraction(2)),
    PriceFactor("sound", True, Fraction(2)),
)

_BD_COMMON = (
    OptionSpec("resolution", "Resolution", ("480p", "720p", "1080p"), "720p", "resolution", required=False),
    OptionSpec("duration", "Duration", ("5", "10"), "5", "duration", required=False),
    OptionSpec("camera_fixed", "Fixed camera", (False, True), False, "camera_fixed", "bool", required=False),
)
_BD_FACTORS = (
    PriceFactor("duration", "10", Fraction(2)),
    PriceFactor("resolution", "1080p", Fraction(2)),
)
# Sent explicitly so KIE's filter stays on even if its default changes (the Playground always has it on).
_BD_FIXED = (("enable_safety_checker", True),)
_BD_EXTRA = (
    ExtraField("seed", "int", -1, 2147483647),
    ExtraField("enable_safety_checker", "bool"),
    _NSFW,
)

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        key="seedream_45_t2i", name="Seedream 4.5", kie_model="seedream/4.5-text-to-image",
        kind=Kind.IMAGE, mode=Mode.T2I, base_price=8, options=_SEEDREAM_OPTIONS,
        prompt_min=1, prompt_max=3000, extra_fields=(_NSFW,),
    ),
    ModelSpec(
        key="seedream_45_edit", name="Seedream 4.5 Edit", kie_model="seedream/4.5-edit",
        kind=Kind.IMAGE, mode=Mode.I2I, base_price=8, options=_SEEDREAM_OPTIONS,
        prompt_min=1, prompt_max=3000,
        image_input=ImageInputRule(1, 14, "image_urls", as_list=True), extra_fields=(_NSFW,),
    ),
    ModelSpec(
        key="flux2_pro_t2i", name="FLUX.2 Pro", kie_model="flux-2/pro-text-to-image",
        kind=Kind.IMAGE, mode=Mode.T2I, base_price=12, options=_FLUX_OPTIONS,
        prompt_min=3, prompt_max=5000, price_factors=_FLUX_FACTORS, extra_fields=(_NSFW,),
    ),
    ModelSpec(
        key="flux2_pro_i2i", name="FLUX.2 Pro Edit", kie_model="flux-2/pro-image-to-image",
        kind=Kind.IMAGE, mode=Mode.I2I, base_price=12, options=_FLUX_OPTIONS,
        prompt_min=3, prompt_max=5000, image_input=ImageInputRule(1, 8, "input_urls", as_list=True),
        price_factors=_FLUX_FACTORS, extra_fields=(_NSFW,),
    ),
    ModelSpec(
        key="kling_26_t2v", name="Kling 2.6", kie_model="kling-2.6/text-to-video",
        kind=Kind.VIDEO, mode=Mode.T2V, base_price=25,
        options=(_ratio(_KLING_RATIOS, "1:1"), _KLING_DURATION, _KLING_SOUND),
        prompt_min=1, prompt_max=1000, price_factors=_KLING_FACTORS,
    ),
    ModelSpec(
        key="kling_26_i2v", name="Kling 2.6 Animate", kie_model="kling-2.6/image-to-video",
        kind=Kind.VIDEO, mode=Mode.I2V, base_price=25, options=(_KLING_DURATION, _KLING_SOUND),
        prompt_min=1, prompt_max=1000, image_input=ImageInputRule(1, 1, "image_urls", as_list=True),
        price_factors=_KLING_FACTORS,
    ),
    ModelSpec(
        key="bytedance_v1pro_t2v", name="Bytedance V1 Pro Text", kie_model="bytedance/v1-pro-text-to-video",
        kind=Kind.VIDEO, mode=Mode.T2V, base_price=30,
        options=(_ratio(_BYTEDANCE_RATIOS, "16:9", required=False), *_BD_COMMON),
        prompt_min=1, prompt_max=10000, price_factors=_BD_FACTORS,
        fixed_input=_BD_FIXED, extra_fields=_BD_EXTRA,
    ),
    ModelSpec(
        key="bytedance_v1pro_i2v", name="Bytedance V1 Pro",
        kie_model="bytedance/v1-pro-image-to-video",
        kind=Kind.VIDEO, mode=Mode.I2V, base_price=30, options=_BD_COMMON,
        prompt_min=1, prompt_max=10000, image_input=ImageInputRule(1, 1, "image_url", as_list=False),
        price_factors=_BD_FACTORS, fixed_input=_BD_FIXED, extra_fields=_BD_EXTRA,
    ),
    *VEO_MODELS,
)
