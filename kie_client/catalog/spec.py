"""Frozen value types describing a model: its options, image input rule and pricing factors."""

from __future__ import annotations

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


@dataclass(frozen=True)
class OptionSpec:
    """One user-selectable option. `values` are canonical (what KIE receives); `required` is
    KIE's own required-ness, used when validating a raw KIE input."""

    name: str
    label: str
    values: tuple[Any, ...]
    default: Any
    kie_field: str
    kind: Literal["choice", "bool"] = "choice"
    required: bool = True


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
    """A voice message or audio file the model takes (uploaded to KIE's upload host like photos).
    Minimal form; the catalog-as-data work may extend it."""

    min_count: int
    max_count: int
    kie_field: str
    as_list: bool = False
    mime_types: tuple[str, ...] = ("audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/x-wav",
                                   "audio/aac", "audio/x-m4a")
    max_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class PriceFactor:
    """Multiply the price when option `option` has value `value` (factors compound)."""

    option: str
    value: Any
    multiplier: Fraction


@dataclass(frozen=True)
class ExtraField:
    """A documented KIE input field that is not a user option (seed, safety switches)."""

    name: str
    kind: Literal["bool", "int"]
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    key: str
    name: str
    kie_model: str
    kind: Kind
    mode: Mode
    base_price: int
    options: tuple[OptionSpec, ...]
    prompt_min: int
    prompt_max: int
    image_input: ImageInputRule | None = None
    price_factors: tuple[PriceFactor, ...] = ()
    fixed_input: tuple[tuple[str, Any], ...] = ()
    extra_fields: tuple[ExtraField, ...] = ()
    audio_input: AudioInputRule | None = None
    # Which KIE API shape serves the model: "market" (jobs/createTask) or "veo" (/api/v1/veo/*);
    # the pipeline picks its provider by this name (kie_client/providers.py).
    api: str = "market"

    def option(self, name: str) -> OptionSpec | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None
