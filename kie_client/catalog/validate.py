"""Option coercion (user side, lenient) and raw KIE input validation (KIE side, strict).

Several catalog models may share one KIE model id (Nano Banana 2 creates and edits under one id);
KIE's own rules for that id are the union of theirs: an image field any of them writes is known,
and required only when every one of them writes it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
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
from .loader import extra_problem
from .models import MODELS
from .spec import ExtraField, ModelSpec, OptionSpec

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def spec_for_kie_model(kie_model: str) -> ModelSpec:
    for spec in MODELS:
        if spec.kie_model == kie_model:
            return spec
    raise UnknownModelError(str(kie_model), sorted({m.kie_model for m in MODELS}))


@dataclass(frozen=True)
class _UrlField:
    name: str
    min_count: int
    max_count: int
    as_list: bool


@dataclass
class KieSchema:
    """What KIE checks for one model id (derived from every catalog model using it)."""

    kie_model: str
    name: str
    prompt: bool
    prompt_min: int
    prompt_max: int
    model_field: str | None
    urls: dict[str, _UrlField] = field(default_factory=dict)
    options: dict[str, tuple[OptionSpec, bool]] = field(default_factory=dict)
    extras: dict[str, ExtraField] = field(default_factory=dict)


def _schema_of(specs: Iterable[ModelSpec]) -> KieSchema:
    specs = list(specs)
    first = specs[0]
    schema = KieSchema(first.kie_model, first.name, first.prompt, first.prompt_min, first.prompt_max,
                       first.model_field)
    url_rules: dict[str, list] = {}
    for spec in specs:
        for rule in (spec.image_input, spec.audio_input):
            if rule is not None:
                url_rules.setdefault(rule.kie_field, []).append(rule)
    for name, rules in url_rules.items():
        everywhere = len(rules) == len(specs)
        lo = min(r.min_count for r in rules) if everywhere else 0
        schema.urls[name] = _UrlField(name, lo, max(r.max_count for r in rules), rules[0].as_list)
    option_count: dict[str, int] = {}
    for spec in specs:
        for opt in spec.options:
            option_count[opt.kie_field] = option_count.get(opt.kie_field, 0) + 1
            known = schema.options.get(opt.kie_field)
            required = opt.required and (known[1] if known else True)
            schema.options[opt.kie_field] = (opt, required)
        for extra in spec.extra_fields:
            schema.extras.setdefault(extra.name, extra)
    for name, (opt, required) in list(schema.options.items()):
        schema.options[name] = (opt, required and option_count[name] == len(specs))
    return schema


@lru_cache(maxsize=512)
def _schema_for(specs: tuple[ModelSpec, ...], kie_model: str) -> KieSchema:
    same = [s for s in specs if s.kie_model == kie_model]
    if not same:
        raise UnknownModelError(str(kie_model), sorted({m.kie_model for m in specs}))
    return _schema_of(same)


def kie_schema(kie_model: str, specs: tuple[ModelSpec, ...] | None = None) -> KieSchema:
    return _schema_for(MODELS if specs is None else specs, kie_model)


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
    if not spec.prompt:
        return ""
    if not isinstance(prompt, str):
        raise InvalidPromptError(spec.prompt_min, spec.prompt_max, 0, message="prompt must be a string")
    text = prompt.strip()
    if not text or len(text) < spec.prompt_min or len(text) > spec.prompt_max:
        raise InvalidPromptError(spec.prompt_min, spec.prompt_max, len(text))
    problem = prompt_problem(text)
    if problem is not None:
        raise PromptCharactersError(spec.prompt_min, spec.prompt_max, len(text), problem=problem)
    return text


def _check_urls(name: str, items: list, lo: int, hi: int, label: str, owner: str) -> list[str]:
    if hi == 0 and items:
        raise ImageInputError(f"{owner} takes no input {label}s")
    if len(items) < lo:
        raise ImageInputError(f"{name} needs at least {lo} {label}(s), got {len(items)}", field=name)
    if len(items) > hi:
        raise ImageInputError(f"{name} takes at most {hi} {label}(s), got {len(items)}", field=name)
    for url in items:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ImageInputError(f"{name} must hold http(s) URLs, got {url!r}", field=name)
    return items


def check_image_urls(spec: ModelSpec, urls: Any) -> list[str]:
    rule = spec.image_input
    items = [urls] if isinstance(urls, str) else list(urls or ())
    if rule is None:
        if items:
            raise ImageInputError(f"{spec.name} takes no input images")
        return []
    return _check_urls(rule.kie_field, items, rule.min_count, rule.max_count, "image", spec.name)


def check_audio_urls(spec: ModelSpec, urls: Any) -> list[str]:
    rule = spec.audio_input
    items = [urls] if isinstance(urls, str) else list(urls or ())
    if rule is None:
        if items:
            raise ImageInputError(f"{spec.name} takes no audio", field="audio")
        return []
    return _check_urls(rule.kie_field, items, rule.min_count, rule.max_count, "audio file", spec.name)


def validate_input(kie_model: str, input: Mapping[str, Any],
                   specs: tuple[ModelSpec, ...] | None = None) -> None:
    """Check a raw KIE `input` exactly as documented (strings for duration, real booleans, required
    fields present, enums, lengths, counts) — by the packaged models, or `specs`. Raises a
    CatalogError subclass; MissingFieldError reads "<field> is required"."""
    schema = kie_schema(kie_model, specs)
    if not isinstance(input, Mapping):
        raise CatalogError("input must be a JSON object", field="input")
    known: set[str] = set()
    if schema.prompt:
        known.add("prompt")
        if "prompt" not in input:
            raise MissingFieldError("prompt")
        prompt = input["prompt"]
        if not isinstance(prompt, str):
            raise InvalidPromptError(schema.prompt_min, schema.prompt_max, 0, message="prompt must be a string")
        length = len(prompt) if prompt.strip() else 0
        if not schema.prompt_min <= length <= schema.prompt_max or length == 0:
            raise InvalidPromptError(schema.prompt_min, schema.prompt_max, length)
    if schema.model_field is not None:
        known.add(schema.model_field)
        if input.get(schema.model_field) != kie_model:
            raise InvalidOptionError(schema.model_field, input.get(schema.model_field), (kie_model,))
    for name, rule in schema.urls.items():
        known.add(name)
        if name not in input:
            if rule.min_count > 0:
                raise MissingFieldError(name)
            continue
        value = input[name]
        if rule.as_list and not isinstance(value, list):
            raise ImageInputError(f"{name} must be an array of URLs", field=name)
        if not rule.as_list and not isinstance(value, str):
            raise ImageInputError(f"{name} must be a single URL string", field=name)
        items = value if isinstance(value, list) else [value]
        _check_urls(name, items, max(rule.min_count, 1 if not rule.as_list else 0), rule.max_count,
                    "file", schema.name)
    for name, (opt, required) in schema.options.items():
        known.add(name)
        if name not in input:
            if required:
                raise MissingFieldError(name, opt.values)
            continue
        value = input[name]
        if opt.kind == "bool":
            ok = isinstance(value, bool)
        else:
            ok = value in opt.values and any(type(value) is type(v) for v in opt.values if v == value)
        if not ok:
            raise InvalidOptionError(name, value, opt.values)
    for name, extra in schema.extras.items():
        known.add(name)
        if name not in input:
            continue
        problem = extra_problem(extra, input[name])
        if problem:
            raise InvalidOptionError(name, input[name], extra.values, message=problem)
    for name in input:
        if name not in known:
            raise InvalidOptionError(
                name, input[name], sorted(known), message=f"{name} is not a field of {kie_model}"
            )
