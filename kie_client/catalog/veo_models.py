"""Veo 3.1 (Lite, Fast, Quality): KIE's dedicated Veo routes (api="veo", kie_client/veo.py).

Fields from KIE's "Generate Veo3.1 Video" page (kie-market-2026.md shape V): `prompt` (required),
`model` veo3_lite | veo3_fast | veo3, `imageUrls` (1 image: the video unfolds around it; 2: first
and last frame), `aspect_ratio` 16:9 | 9:16 | Auto, `resolution` 720p | 1080p | 4k,
`enableTranslation`, `watermark`, `generationType`, `callBackUrl`. The model id and the callback
URL are added by the provider, `generationType` from whether images were given; the catalog
builds the rest, so one menu entry serves text-to-video and image-to-video.

KIE's price per 8 s clip (credits): Lite 30 / 35 / 150, Fast 60 / 65 / 180, Quality 250 / 255 / 370
(720p / 1080p / 4k). Our ⭐ keep Kling 2.6's margin (25⭐ for 55 cr): Lite 14⭐, Fast 28⭐,
Quality 114⭐ at 720p, the resolution factors following KIE's ratios (rounded up). The prompt
limit is not documented; 5000 characters is a GUESS. The catalog-as-data work owns the final
figures; these specs are the Veo path's own test data until then.
"""

from __future__ import annotations

from fractions import Fraction

from .spec import ExtraField, ImageInputRule, Kind, ModelSpec, Mode, OptionSpec, PriceFactor

VEO_RATIOS = ("16:9", "9:16", "Auto")
VEO_RESOLUTIONS = ("720p", "1080p", "4k")
VEO_GENERATION_TYPES = ("TEXT_2_VIDEO", "FIRST_AND_LAST_FRAMES_2_VIDEO", "REFERENCE_2_VIDEO")

_OPTIONS = (
    OptionSpec("aspect_ratio", "Aspect ratio", VEO_RATIOS, "16:9", "aspect_ratio", required=False),
    OptionSpec("resolution", "Resolution", VEO_RESOLUTIONS, "720p", "resolution", required=False),
)
# 0 images: text to video; 1: the clip unfolds around it; 2: first and last frame.
_FRAMES = ImageInputRule(0, 2, "imageUrls", as_list=True)
_EXTRA = (ExtraField("enableTranslation", "bool"),)


def _veo(key: str, name: str, kie_model: str, price: int, cr: tuple[int, int, int]) -> ModelSpec:
    base = cr[0]
    return ModelSpec(
        key=key, name=name, kie_model=kie_model, kind=Kind.VIDEO, mode=Mode.T2V, base_price=price,
        options=_OPTIONS, prompt_min=1, prompt_max=5000, image_input=_FRAMES,
        price_factors=(PriceFactor("resolution", "1080p", Fraction(cr[1], base)),
                       PriceFactor("resolution", "4k", Fraction(cr[2], base))),
        extra_fields=_EXTRA, api="veo",
    )


VEO_MODELS: tuple[ModelSpec, ...] = (
    _veo("veo31_lite", "Veo 3.1 Lite", "veo3_lite", 14, (30, 35, 150)),
    _veo("veo31_fast", "Veo 3.1 Fast", "veo3_fast", 28, (60, 65, 180)),
    _veo("veo31_quality", "Veo 3.1 Quality", "veo3", 114, (250, 255, 370)),
)

# KIE's credits per clip, for the emulator's bill (kie-market-2026.md shape V).
VEO_CREDITS = {"veo3_lite": (30, 35, 150), "veo3_fast": (60, 65, 180), "veo3": (250, 255, 370)}
