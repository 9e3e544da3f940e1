"""Option coercion (user side, lenient) and raw KIE input validation (KIE side, strict)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from .errors import (
    CatalogError,
    ImageInputError,
    InvalidOptionError,
    InvalidPromptError,
    MissingFieldError,
    PromptCharactersError,
    UnknownModelError,
)
from .models import MODELS
from .spec import ModelSpec, OptionSpec

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def spec_for_kie_model(kie_model: str) -> ModelSpec:
    for spec in MODELS:
        if spec.kie_model == kie_model:
            return spec
    raise UnknownModelError(str(kie_model), [m.kie_model for m in MODELS])


def coerce_option(opt: OptionSpec, value: Any) -> Any:
    """Map a user/handler value onto the canonical value: 5 → "5", "true" → True, "2k" → "2K"."""
    if opt.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise InvalidOptionError(opt.name, value, opt.values)
    if isinstance(value, bool):  # True is an int in Python; never let it pass as duration 1
        raise InvalidOptionError(opt.name, value, opt.values)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, str)):
        wanted = str(value).strip().lower()
        for allowed in opt.values:
            if str(allowed).lower() == wanted:
                return allowed
    raise InvalidOptionError(opt.name, value, opt.values)


# Characters that are letters or symbols to Unicode yet show nothing (fillers, the blank
# Braille pattern): a prompt of only these is as empty as one of zero-width spaces.
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def prompt_problem(text: str) -> str | None:
    """"control" when `text` holds a control character (Cc other than tab and line breaks, or a
    lone surrogate), "invisible" when no character of it would show, else None."""
    visible = False
    for char in text:
        category = unicodedata.category(char)
        if (category == "Cc" and char not in _ALLOWED_CONTROLS) or category == "Cs":
            return "control"
        if not visible and category[0] in "LNPS" and char not in _BLANK_LOOKALIKES:
            visible = True
    return None if visible else "invisible"


def check_prompt_text(spec: ModelSpec, prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise InvalidPromptError(spec.prompt_min, spec.prompt_max, 0, message="prompt must be a string")
    text = prompt.strip()
    if not text or len(text) < spec.prompt_min or len(text) > spec.prompt_max:
        raise InvalidPromptError(spec.prompt_min, spec.prompt_max, len(text))
    problem = prompt_problem(text)
    if problem is not None:
        raise PromptCharactersError(spec.prompt_min, spec.prompt_max, len(text), problem=problem)
    return text


def check_image_urls(spec: ModelSpec, urls: Any) -> list[str]:
    rule = spec.image_input
    items = [urls] if isinstance(urls, str) else list(urls or ())
    if rule is None:
        if items:
            raise ImageInputError(f"{spec.name} takes no input images")
        return []
    if len(items) < rule.min_count:
        raise ImageInputError(
            f"{rule.kie_field} needs at least {rule.min_count} image(s), got {len(items)}",
            field=rule.kie_field,
        )
    if len(items) > rule.max_count:
        raise ImageInputError(
            f"{rule.kie_field} takes at most {rule.max_count} image(s), got {len(items)}",
            field=rule.kie_field,
        )
    for url in items:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ImageInputError(f"{rule.kie_field} must hold http(s) URLs, got {url!r}", field=rule.kie_field)
    return items


def check_audio_urls(spec: ModelSpec, urls: Any) -> list[str]:
    rule = spec.audio_input
    items = [urls] if isinstance(urls, str) else list(urls or ())
    if rule is None:
        if items:
            raise CatalogError(f"{spec.name} takes no audio", field="audio")
        return []
    if not rule.min_count <= len(items) <= rule.max_count:
        raise CatalogError(
            f"{rule.kie_field} takes {rule.min_count} to {rule.max_count} audio file(s), got {len(items)}",
            field=rule.kie_field,
        )
    for url in items:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise CatalogError(f"{rule.kie_field} must hold http(s) URLs, got {url!r}", field=rule.kie_field)
    return items


def _check_image_field(spec: ModelSpec, rule: Any, value: Any) -> None:
    if rule.as_list and not isinstance(value, list):
        raise ImageInputError(f"{rule.kie_field} must be an array of URLs", field=rule.kie_field)
    if not rule.as_list and not isinstance(value, str):
        raise ImageInputError(f"{rule.kie_field} must be a single URL string", field=rule.kie_field)
    check_image_urls(spec, value)


def validate_input(kie_model: str, input: Mapping[str, Any]) -> None:
    """Check a raw KIE `input` exactly as documented (strings for duration, real booleans, required
    fields present). Raises a CatalogError subclass; MissingFieldError reads "<field> is required"."""
    spec = spec_for_kie_model(kie_model)
    if not isinstance(input, Mapping):
        raise CatalogError("input must be a JSON object", field="input")
    if "prompt" not in input:
        raise MissingFieldError("prompt")
    prompt = input["prompt"]
    if not isinstance(prompt, str):
        raise InvalidPromptError(spec.prompt_min, spec.prompt_max, 0, message="prompt must be a string")
    length = len(prompt) if prompt.strip() else 0
    if not spec.prompt_min <= length <= spec.prompt_max or length == 0:
        raise InvalidPromptError(spec.prompt_min, spec.prompt_max, length)
    known = {"prompt"}
    rule = spec.image_input
    if rule is not None:
        known.add(rule.kie_field)
        if rule.kie_field not in input:
            if rule.min_count > 0:
                raise MissingFieldError(rule.kie_field)
        else:
            _check_image_field(spec, rule, input[rule.kie_field])
    for opt in spec.options:

        known.add(opt.kie_field)
        if opt.kie_field not in input:
            if opt.required:
                raise MissingFieldError(opt.kie_field, opt.values)
            continue
        value = input[opt.kie_field]
        ok = isinstance(value, bool) if opt.kind == "bool" else isinstance(value, str) and value in opt.values
        if not ok:
            raise InvalidOptionError(opt.kie_field, value, opt.values)
    for extra in spec.extra_fields:
        known.add(extra.name)
        if extra.name not in input:
            continue
        value = input[extra.name]
        if extra.kind == "bool":
            if not isinstance(value, bool):
                raise InvalidOptionError(extra.name, value, (False, True))
        elif (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (extra.minimum is not None and value < extra.minimum)
            or (extra.maximum is not None and value > extra.maximum)
        ):
            raise InvalidOptionError(
                extra.name, value, message=f"{extra.name} must be an integer from {extra.minimum} to {extra.maximum}"
            )
    for name in input:
        if name not in known:
            raise InvalidOptionError(
                name, input[name], sorted(known), message=f"{name} is not a field of {kie_model}"
            )
