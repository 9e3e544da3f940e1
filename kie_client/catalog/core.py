"""`Catalog`: the single source of truth for models, options, prices and KIE inputs.

Prices, in order of precedence: an admin's runtime price (`apply_runtime`, from the database),
then an operator's PRICE_OVERRIDES (both are the ⭐ at the model's default options; other option
combinations keep the data file's ratios and no markup is added), then the data file's formula
times PRICE_MARKUP. Every price is rounded up to a whole ⭐ once, at the end.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .errors import CatalogError, ImageInputError, InvalidOptionError, UnknownModelError
from .models import MODELS
from .spec import Job, Kind, ModelSpec
from .validate import check_audio_urls, check_image_urls, check_prompt_text, coerce_option, validate_input


class ModelDisabledError(CatalogError):
    """The model is switched off (data file, or an admin's /models disable): no new orders."""

    def __init__(self, key: str, name: str) -> None:
        super().__init__(f"{name} is not available right now", field="model")
        self.key = key


@dataclass(frozen=True)
class RuntimeOverride:
    """An admin's change made in chat (stored in the model_overrides table)."""

    enabled: bool | None = None
    price: int | None = None


def _whole_price(key: str, price: Any) -> int:
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise CatalogError(f"price override for {key} must be a whole number ≥ 0, got {price!r}", field=key)
    return price


class Catalog:
    """Model lookups, prices and request building. Instances differ in their overrides, so
    operators change a ⭐ price or the markup from settings and admins at runtime, without code."""

    def __init__(self, price_overrides: Mapping[str, int] | None = None, *,
                 markup: Decimal | Fraction | int | str = 1,
                 specs: Iterable[ModelSpec] | None = None) -> None:
        self._specs = {spec.key: spec for spec in (MODELS if specs is None else specs)}
        self._all = tuple(self._specs.values())  # what validate_input checks KIE's rules by
        overrides = dict(price_overrides or {})
        for key, price in overrides.items():
            if key not in self._specs:
                raise UnknownModelError(key, list(self._specs))
            _whole_price(key, price)
        self._overrides = overrides
        try:
            self._markup = Fraction(str(markup))
        except (ValueError, ZeroDivisionError):
            raise CatalogError(f"PRICE_MARKUP must be a number, got {markup!r}", field="markup") from None
        if self._markup <= 0:
            raise CatalogError(f"PRICE_MARKUP must be more than 0, got {markup}", field="markup")
        self._runtime: dict[str, RuntimeOverride] = {}
        self._from: dict[str, int] = {}  # from_price, until the next apply_runtime
        self._apis: frozenset[str] | None = None
        self._audio = True

    def __repr__(self) -> str:
        return f"Catalog(price_overrides={self._overrides!r}, markup={str(self._markup)})"

    # -- runtime (admin) overrides --------------------------------------------------------------

    def apply_runtime(self, overrides: Mapping[str, RuntimeOverride]) -> None:
        """Replace the admins' overrides (unknown keys — a model removed from the data — are
        ignored, so an old row never stops the bot)."""
        clean = {}
        for key, override in overrides.items():
            if key in self._specs:
                if override.price is not None:
                    _whole_price(key, override.price)
                clean[key] = override
        self._runtime = clean
        self._from = {}

    def runtime(self, key: str) -> RuntimeOverride:
        return self._runtime.get(key, RuntimeOverride())

    def enabled(self, key: str) -> bool:
        override = self._runtime.get(key)
        if override is not None and override.enabled is not None:
            return override.enabled
        return self.get(key).enabled

    def limit_to(self, *, apis: Iterable[str], audio_input: bool) -> None:
        """What the running bot can serve (its providers, whether it takes audio from users):
        other models stay in the catalog but are not sold. The generation service sets this."""
        self._apis = frozenset(apis)
        self._audio = audio_input

    def served(self, key: str) -> bool:
        """The running bot can take this model's inputs and submit it (on or off)."""
        spec = self.get(key)
        if self._apis is not None and spec.api not in self._apis:
            return False
        return spec.audio_input is None or self._audio

    def sellable(self, key: str) -> bool:
        return self.served(key) and self.enabled(key)

    def check_enabled(self, key: str) -> None:
        if not self.sellable(key):
            spec = self.get(key)
            raise ModelDisabledError(key, spec.name)

    # -- lookups ---------------------------------------------------------------------------------

    def get(self, key: str) -> ModelSpec:
        try:
            return self._specs[key]
        except (KeyError, TypeError):
            raise UnknownModelError(str(key), list(self._specs)) from None

    def models(self, kind: Kind | str | None = None, *, job: Job | str | None = None,
               enabled_only: bool = False) -> tuple[ModelSpec, ...]:
        specs: Iterable[ModelSpec] = self._specs.values()
        if kind is not None:
            try:
                wanted = Kind(kind)
            except ValueError:
                raise InvalidOptionError("kind", kind, [k.value for k in Kind]) from None
            specs = [s for s in specs if s.kind == wanted]
        if job is not None:
            try:
                section = Job(job)
            except ValueError:
                raise InvalidOptionError("job", job, [j.value for j in Job]) from None
            specs = [s for s in specs if s.section == section]
        if enabled_only:
            specs = [s for s in specs if self.sellable(s.key)]
        return tuple(specs)

    def defaults(self, key: str) -> dict[str, Any]:
        return {opt.name: opt.default for opt in self.get(key).options}

    def normalise_options(self, key: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
        spec = self.get(key)
        given = dict(options or {})
        names = [opt.name for opt in spec.options]
        for name in given:
            if name not in names:
                shown = ", ".join(names) or "none"
                raise InvalidOptionError(
                    str(name), given[name], names, message=f"{spec.name} has no option {name!r} (options: {shown})"
                )
        return {
            opt.name: coerce_option(opt, given[opt.name]) if opt.name in given else opt.default
            for opt in spec.options
        }

    def combinations(self, key: str) -> Iterable[dict[str, Any]]:
        """Every combination of the values the menu offers (the starting price, the tests)."""
        spec = self.get(key)
        for values in itertools.product(*(opt.offered for opt in spec.options)):
            yield dict(zip((opt.name for opt in spec.options), values, strict=True))

    # -- prices ----------------------------------------------------------------------------------

    def base_price(self, key: str) -> int:
        """⭐ at the default options (and the shortest audio), as the price formula gives it."""
        return self.price(key, self.defaults(key), audio_seconds=self._min_audio(key))

    def _min_audio(self, key: str) -> int | None:
        audio = self.get(key).audio_input
        return audio.min_seconds if audio else None

    def price_source(self, key: str) -> str:
        """Where the price comes from: "admin", "settings" or "data"."""
        if self.runtime(key).price is not None:
            return "admin"
        return "settings" if key in self._overrides else "data"

    def price(self, key: str, options: Mapping[str, Any] | None = None, *,
              audio_seconds: float | None = None) -> int:
        """The ⭐ charged for these options. With per-audio-second pricing and no
        `audio_seconds`, the longest audio the model takes (never a short charge)."""
        spec = self.get(key)
        chosen = self.normalise_options(key, options)
        raw = spec.raw_price(chosen, audio_seconds)
        fixed = self.runtime(key).price
        if fixed is None:
            fixed = self._overrides.get(key)
        if fixed is not None:
            at_defaults = spec.raw_price(self.defaults(key), self._min_audio(key))
            return math.ceil(fixed * raw / at_defaults)
        # Round up: a fractional star would otherwise sell a tier below KIE's cost ratio.
        return math.ceil(raw * self._markup)

    def from_price(self, key: str) -> int:
        """The lowest price of any option combination: the menu's "from N⭐"."""
        cached = self._from.get(key)
        if cached is None:  # hundreds of combinations for a video model: once per price change
            lo = self._min_audio(key)
            cached = min(self.price(key, combo, audio_seconds=lo) for combo in self.combinations(key))
            self._from[key] = cached
        return cached

    # -- inputs ----------------------------------------------------------------------------------

    def validate_prompt(self, key: str, prompt: Any) -> str:
        return check_prompt_text(self.get(key), prompt)

    def check_image(self, key: str, *, mime_type: str, size: int) -> None:
        """Check one user image (before upload) against the model's type and size rule."""
        spec = self.get(key)
        rule = spec.image_input
        if rule is None:
            raise ImageInputError(f"{spec.name} takes no input images")
        if mime_type not in rule.mime_types:
            allowed = ", ".join(m.split("/")[1] for m in rule.mime_types)
            raise ImageInputError(f"image type {mime_type} is not accepted; use {allowed}", field=rule.kie_field)
        if size > rule.max_bytes:
            raise ImageInputError(
                f"image is {size} bytes; at most {rule.max_bytes // (1024 * 1024)} MB allowed", field=rule.kie_field
            )

    def check_audio(self, key: str, *, mime_type: str, size: int, seconds: float | None = None) -> None:
        """Check one user audio (voice message or file) against the model's audio rule."""
        spec = self.get(key)
        rule = spec.audio_input
        if rule is None:
            raise ImageInputError(f"{spec.name} takes no audio", field="audio")
        if mime_type not in rule.mime_types:
            allowed = ", ".join(m.split("/")[1] for m in rule.mime_types)
            raise ImageInputError(f"audio type {mime_type} is not accepted; use {allowed}", field=rule.kie_field)
        if size > rule.max_bytes:
            raise ImageInputError(
                f"audio is {size} bytes; at most {rule.max_bytes // (1024 * 1024)} MB allowed", field=rule.kie_field
            )
        if seconds is not None and seconds > rule.max_seconds:
            raise ImageInputError(f"audio is {math.ceil(seconds)} s; at most {rule.max_seconds} s allowed",
                                  field=rule.kie_field)

    def build_input(
        self, key: str, prompt: Any, options: Mapping[str, Any] | None, image_urls: Iterable[str] = (),
        audio_urls: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The exact KIE `input` object (for api "veo", the body without callBackUrl): every
        option filled (KIE does not fill defaults itself)."""
        spec = self.get(key)
        text = check_prompt_text(spec, prompt)
        chosen = self.normalise_options(key, options)
        urls = check_image_urls(spec, image_urls)
        audio = check_audio_urls(spec, audio_urls)
        result: dict[str, Any] = {"prompt": text} if spec.prompt else {}
        if spec.model_field is not None:
            result[spec.model_field] = spec.kie_model
        for rule, given in ((spec.image_input, urls), (spec.audio_input, audio)):
            if rule is not None and given:  # none given to an optional input: the field is left out
                result[rule.kie_field] = given if rule.as_list else given[0]
        for opt in spec.options:
            result[opt.kie_field] = chosen[opt.name]
        result.update(spec.fixed_input)
        validate_input(spec.kie_model, result, self._all)
        return result
