"""`Catalog`: the single source of truth for models, options, prices and KIE inputs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from .errors import CatalogError, ImageInputError, InvalidOptionError, UnknownModelError
from .models import MODELS
from .spec import Kind, ModelSpec
from .validate import check_audio_urls, check_image_urls, check_prompt_text, coerce_option, validate_input


class Catalog:
    """Model lookups and request building. Instances differ only in their price overrides, so
    operators can change a ⭐ price from settings without touching the table."""

    def __init__(self, price_overrides: Mapping[str, int] | None = None) -> None:
        self._specs = {spec.key: spec for spec in MODELS}
        overrides = dict(price_overrides or {})
        for key, price in overrides.items():
            if key not in self._specs:
                raise UnknownModelError(key, list(self._specs))
            if isinstance(price, bool) or not isinstance(price, int) or price < 0:
                raise CatalogError(f"price override for {key} must be a whole number ≥ 0, got {price!r}", field=key)
        self._overrides = overrides

    def __repr__(self) -> str:
        return f"Catalog(price_overrides={self._overrides!r})"

    def get(self, key: str) -> ModelSpec:
        try:
            return self._specs[key]
        except (KeyError, TypeError):
            raise UnknownModelError(str(key), list(self._specs)) from None

    def models(self, kind: Kind | str | None = None) -> tuple[ModelSpec, ...]:
        if kind is None:
            return tuple(self._specs.values())
        try:
            wanted = Kind(kind)
        except ValueError:
            raise InvalidOptionError("kind", kind, [k.value for k in Kind]) from None
        return tuple(s for s in self._specs.values() if s.kind == wanted)

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

    def base_price(self, key: str) -> int:
        return self._overrides.get(key, self.get(key).base_price)

    def price(self, key: str, options: Mapping[str, Any] | None = None) -> int:
        spec = self.get(key)
        chosen = self.normalise_options(key, options)
        factor = Fraction(1)
        for pf in spec.price_factors:
            if chosen.get(pf.option) == pf.value:
                factor *= pf.multiplier
        # Round up: a fractional star would otherwise sell a tier below KIE's cost ratio.
        return math.ceil(self.base_price(key) * factor)

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

    def check_audio(self, key: str, *, mime_type: str, size: int) -> None:
        """Check one user audio file (voice message or audio document) before upload."""
        spec = self.get(key)
        rule = spec.audio_input
        if rule is None:
            raise CatalogError(f"{spec.name} takes no audio", field="audio")
        if mime_type not in rule.mime_types:
            allowed = ", ".join(m.split("/")[1] for m in rule.mime_types)
            raise CatalogError(f"audio type {mime_type} is not accepted; use {allowed}", field=rule.kie_field)
        if size > rule.max_bytes:
            raise CatalogError(
                f"audio is {size} bytes; at most {rule.max_bytes // (1024 * 1024)} MB allowed", field=rule.kie_field
            )

    def build_input(
        self, key: str, prompt: Any, options: Mapping[str, Any] | None, image_urls: Iterable[str] = (),
        audio_urls: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The exact KIE `input` object: every option filled (KIE does not fill defaults itself)."""
        spec = self.get(key)
        text = check_prompt_text(spec, prompt)
        chosen = self.normalise_options(key, options)
        urls = check_image_urls(spec, image_urls)
        result: dict[str, Any] = {"prompt": text}
        rule = spec.image_input
        if rule is not None and urls:  # none given to an optional input: the field is left out
            result[rule.kie_field] = urls if rule.as_list else urls[0]
        audio = check_audio_urls(spec, audio_urls)
        if spec.audio_input is not None and audio:
            result[spec.audio_input.kie_field] = audio if spec.audio_input.as_list else audio[0]
        for opt in spec.options:
            result[opt.kie_field] = chosen[opt.name]
        result.update(spec.fixed_input)
        validate_input(spec.kie_model, result)
        return result
