"""Frozen value types describing a model: its options, inputs, pricing and where it is sold.

The values come from the data files in kie_client/catalog/data/ (loader.py reads and checks them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any, Literal


class Kind(str, Enum):
    IMAGE = "image"
    VIDEO = "video"


class Mode(str, Enum):
    T2I = "t2i"
    I2I = "i2i"
    T2V = "t2v"
    I2V = "i2v"


class Job(str, Enum):
    """The job a person has in mind: one menu section each, in this order."""

    CREATE_IMAGE = "create_image"
    EDIT_PHOTO = "edit_photo"
    ANIMATE_PHOTO = "animate_photo"
    TEXT_TO_VIDEO = "text_to_video"
    TALKING_PHOTO = "talking_photo"
    TOOLS = "tools"


DEFAULT_JOB = {Mode.T2I: Job.CREATE_IMAGE, Mode.I2I: Job.EDIT_PHOTO, Mode.T2V: Job.TEXT_TO_VIDEO,
               Mode.I2V: Job.ANIMATE_PHOTO}

# The API shapes a model can use; the pipeline picks its provider by `ModelSpec.api`.
APIS = ("market", "veo")


@dataclass(frozen=True)
class OptionSpec:
    """One user-selectable option. `values` are canonical (what KIE receives, strings or whole
    numbers as KIE types them); `required` is KIE's own required-ness, used when validating a raw
    KIE input."""

    name: str
    label: str
    values: tuple[Any, ...]
    default: Any
    kie_field: str
    kind: Literal["choice", "bool"] = "choice"
    required: bool = True
    choices: tuple[Any, ...] = ()  # the values the menu offers, when fewer than KIE accepts

    @property
    def offered(self) -> tuple[Any, ...]:
        return self.choices or self.values


@dataclass(frozen=True)
class ImageInputRule:
    min_count: int
    max_count: int
    kie_field: str
    as_list: bool
    mime_types: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")
    max_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class AudioInputRule:
    """A voice message or audio file sent with the photo (talking-photo models), uploaded to KIE's
    upload host like photos. The video is as long as the audio, so `max_seconds` caps it and
    per-second prices count its seconds."""

    min_count: int
    max_count: int
    kie_field: str
    as_list: bool = False
    mime_types: tuple[str, ...] = ("audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/x-wav",
                                   "audio/aac", "audio/x-m4a")
    max_bytes: int = 10 * 1024 * 1024
    min_seconds: int = 1
    max_seconds: int = 15


@dataclass(frozen=True)
class PriceFactor:
    """Multiply the price when option `option` has value `value` (factors compound)."""

    option: str
    value: Any
    multiplier: Fraction


@dataclass(frozen=True)
class PriceTier:
    """A unit price (⭐, may be fractional) used when every `when` option has its value; the first
    matching tier wins. `credits` is KIE's own price for the same unit, kept to check margins."""

    when: tuple[tuple[str, Any], ...]
    stars: Fraction
    credits: Fraction | None = None

    def matches(self, options: dict[str, Any]) -> bool:
        return all(options.get(name) == value for name, value in self.when)


@dataclass(frozen=True)
class PriceRule:
    """⭐ = ceil(unit × factors × seconds × markup). `unit`: the first matching tier's stars, else
    `stars`. `per_second`: None (per image / per video), an option whose value is the seconds,
    or "audio" (the seconds of the user's audio, AudioInputRule limits)."""

    stars: Fraction
    tiers: tuple[PriceTier, ...] = ()
    factors: tuple[PriceFactor, ...] = ()
    per_second: str | None = None
    credits: Fraction | None = None

    def unit(self, options: dict[str, Any]) -> tuple[Fraction, Fraction | None]:
        for tier in self.tiers:
            if tier.matches(options):
                return tier.stars, tier.credits
        return self.stars, self.credits


@dataclass(frozen=True)
class ExtraField:
    """A documented KIE input field that is not a user option (seed, safety switches, fixed
    values). Kinds: bool, int (minimum/maximum), enum (values), url, string (maximum = length)."""

    name: str
    kind: Literal["bool", "int", "enum", "url", "string"]
    minimum: int | None = None
    maximum: int | None = None
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    key: str
    name: str
    kie_model: str
    kind: Kind
    mode: Mode
    base_price: int  # ⭐ at the default options (before markup); overrides replace it
    options: tuple[OptionSpec, ...]
    prompt_min: int
    prompt_max: int
    image_input: ImageInputRule | None = None
    price_factors: tuple[PriceFactor, ...] = ()
    fixed_input: tuple[tuple[str, Any], ...] = ()
    extra_fields: tuple[ExtraField, ...] = ()
    # Which KIE API shape serves the model: "market" (jobs/createTask) or "veo" (/api/v1/veo/*);
    # the pipeline picks its provider by this name (kie_client/providers.py).
    api: str = "market"
    audio_input: AudioInputRule | None = None
    pricing: PriceRule | None = None
    job: Job | None = None
    description: tuple[tuple[str, str], ...] = ()  # one line per language: (("en", …), ("ru", …))
    order: int = 0
    enabled: bool = True
    prompt: bool = True  # False: the model takes no prompt (tools)
    model_field: str | None = None  # dedicated APIs carry the model inside the body (Veo: "model")
    source: str = ""  # the data file it came from, for messages

    def option(self, name: str) -> OptionSpec | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None

    @property
    def rule(self) -> PriceRule:
        if self.pricing is not None:
            return self.pricing
        return PriceRule(stars=Fraction(self.base_price), factors=self.price_factors)

    @property
    def section(self) -> Job:
        return self.job or DEFAULT_JOB[self.mode]

    def blurb(self, lang: str) -> str:
        text = dict(self.description)
        return text.get(lang) or text.get("en") or ""

    def raw_price(self, options: dict[str, Any], audio_seconds: int | None = None) -> Fraction:
        """The price before markup and overrides, exact (options already normalised)."""
        rule = self.rule
        unit, _ = rule.unit(options)
        factor = Fraction(1)
        for pf in rule.factors:
            if options.get(pf.option) == pf.value:
                factor *= pf.multiplier
        return unit * factor * self.seconds(options, audio_seconds)

    def seconds(self, options: dict[str, Any], audio_seconds: int | float | None = None) -> int:
        rule = self.rule
        if rule.per_second is None:
            return 1
        if rule.per_second == "audio":
            audio = self.audio_input
            lo, hi = (audio.min_seconds, audio.max_seconds) if audio else (1, 1)
            if audio_seconds is None:  # unknown yet: the longest, so no charge is ever short
                return hi
            return min(hi, max(lo, math.ceil(audio_seconds)))
        return int(options[rule.per_second])
