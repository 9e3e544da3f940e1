"""Reads the model data files (kie_client/catalog/data/*.toml, one per family) into ModelSpecs.

Everything is checked when loaded, and a problem is one CatalogError naming the file, the model
and the field ("kling.toml: kling_30_t2v: options.duration.default: '20' is not one of 3, …"),
so an operator's edit that would break the bot stops the start instead of a user's order.

A file holds `[[model]]` tables. `extends = "<key>"` copies an earlier model of the same file and
replaces the fields given (the edit variant of a text model, say). Fields:

    key, name, kie_model, api ("market" | "veo"), kind (image | video), mode (t2i | i2i | t2v | i2v),
    job (create_image | edit_photo | animate_photo | text_to_video | talking_photo | tools;
    default from mode), order, enabled, description = {en, ru}, model_field,
    prompt = {min, max} | false,
    options = [{name, label, values, default, kie_field (= name), kind (choice | bool), required,
                offer (the values shown in the menu when KIE accepts more)}],
    image_input = {min, max, field, list, max_mb, mime_types} (min = 0 in a t2i/t2v mode: pictures
                  optional, one menu entry serves both; Veo 3.1),
    audio_input = {min, max, field, list, max_mb, mime_types, min_seconds, max_seconds},
    price = {stars, credits, per_second, tiers = [{when, stars, credits}],
             factors = [{option, value, times}]},
    fixed = {field = value}, extra = [{name, kind, min, max, values}].

Prices are ⭐ (fractions allowed: 0.875 or "7/8"); see PriceRule for the formula.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import CatalogError
from .spec import (
    APIS,
    AudioInputRule,
    ExtraField,
    ImageInputRule,
    Job,
    Kind,
    Mode,
    ModelSpec,
    OptionSpec,
    PriceFactor,
    PriceRule,
    PriceTier,
)

DATA_DIR = Path(__file__).with_name("data")
LANGUAGES = ("en", "ru")
_MODEL_KEYS = {
    "key", "name", "kie_model", "api", "kind", "mode", "job", "order", "enabled", "description",
    "model_field", "prompt", "options", "image_input", "audio_input", "price", "fixed", "extra",
    "extends",
}
MB = 1024 * 1024


class _Where:
    """Builds the "file: model: field" prefix of every message."""

    def __init__(self, file: str, key: str = "?") -> None:
        self.file, self.key = file, key

    def error(self, field: str, problem: str) -> CatalogError:
        return CatalogError(f"{self.file}: {self.key}: {field}: {problem}", field=field)


def _need(table: dict, name: str, where: _Where, kind: type | tuple[type, ...], path: str = "") -> Any:
    field = f"{path}{name}"
    if name not in table:
        raise where.error(field, "is required")
    value = table[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise where.error(field, f"must be {_type_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise where.error(field, f"must be {_type_name(kind)}, got {value!r}")
    return value


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "text", int: "a whole number", bool: "true or false", list: "a list",
             dict: "a table", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _fraction(value: Any, where: _Where, field: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise where.error(field, f"must be a number, got {value!r}")
    try:
        result = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise where.error(field, f"must be a number, got {value!r}") from None
    if result < 0:
        raise where.error(field, f"must not be negative, got {value!r}")
    return result


def _enum(cls: type, value: Any, where: _Where, field: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise where.error(field, f"must be one of {allowed}, got {value!r}") from None


def _options(raw: Any, where: _Where) -> tuple[OptionSpec, ...]:
    if not isinstance(raw, list):
        raise where.error("options", "must be a list of tables")
    result = []
    for i, item in enumerate(raw):
        path = f"options[{i}]."
        if not isinstance(item, dict):
            raise where.error(f"options[{i}]", "must be a table")
        name = _need(item, "name", where, str, path)
        path = f"options.{name}."
        kind = item.get("kind", "choice")
        if kind not in ("choice", "bool"):
            raise where.error(path + "kind", f"must be choice or bool, got {kind!r}")
        values = tuple(item.get("values", [False, True] if kind == "bool" else []))
        if kind == "bool" and values != (False, True):
            raise where.error(path + "values", "a bool option has the values [false, true]")
        if kind == "choice":
            if not values:
                raise where.error(path + "values", "must list at least one value")
            if any(isinstance(v, bool) or not isinstance(v, (str, int)) for v in values):
                raise where.error(path + "values", "must be texts or whole numbers")
            if len(set(values)) != len(values):
                raise where.error(path + "values", "has a repeated value")
        default = item.get("default", values[0] if values else None)
        if default not in values or type(default) is not type(values[list(values).index(default)]):
            raise where.error(path + "default", f"{default!r} is not one of its values")
        label = item.get("label", name.replace("_", " ").capitalize())
        kie_field = item.get("kie_field", name)
        required = item.get("required", True)
        if not isinstance(required, bool):
            raise where.error(path + "required", "must be true or false")
        choices = tuple(item.get("offer", ()))
        if any(c not in values for c in choices) or (choices and default not in choices):
            raise where.error(path + "offer", "must be some of the values, the default among them")
        result.append(OptionSpec(name, label, values, default, kie_field, kind, required, choices))
    names = [o.name for o in result]
    if len(set(names)) != len(names):
        raise where.error("options", "has two options with the same name")
    return tuple(result)


def _count_rule(raw: Any, where: _Where, field: str) -> tuple[int, int, str, bool, int, tuple | None]:
    if not isinstance(raw, dict):
        raise where.error(field, "must be a table")
    lo = _need(raw, "min", where, int, field + ".")
    hi = _need(raw, "max", where, int, field + ".")
    if not 0 <= lo <= hi or hi < 1:
        raise where.error(field, f"needs 0 ≤ min ≤ max and max ≥ 1, got {lo}…{hi}")
    kie_field = _need(raw, "field", where, str, field + ".")
    as_list = raw.get("list", True)
    if not isinstance(as_list, bool):
        raise where.error(field + ".list", "must be true or false")
    if not as_list and hi != 1:
        raise where.error(field + ".max", "a single-URL field takes at most 1")
    max_mb = raw.get("max_mb", 10)
    if isinstance(max_mb, bool) or not isinstance(max_mb, (int, float)) or max_mb <= 0:
        raise where.error(field + ".max_mb", f"must be a positive number, got {max_mb!r}")
    mimes = raw.get("mime_types")
    if mimes is not None and (not isinstance(mimes, list)
                              or not all(isinstance(m, str) and "/" in m for m in mimes)):
        raise where.error(field + ".mime_types", "must be a list of MIME types such as image/png")
    return lo, hi, kie_field, as_list, int(max_mb * MB), tuple(mimes) if mimes else None


def _image(raw: Any, where: _Where) -> ImageInputRule | None:
    if raw is None:
        return None
    lo, hi, kie_field, as_list, max_bytes, mimes = _count_rule(raw, where, "image_input")
    extra = {"mime_types": mimes} if mimes else {}
    return ImageInputRule(lo, hi, kie_field, as_list, max_bytes=max_bytes, **extra)


def _audio(raw: Any, where: _Where) -> AudioInputRule | None:
    if raw is None:
        return None
    lo, hi, kie_field, as_list, max_bytes, mimes = _count_rule(raw, where, "audio_input")
    min_s = raw.get("min_seconds", 1)
    max_s = raw.get("max_seconds", 15)
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (min_s, max_s)) or not 1 <= min_s <= max_s:
        raise where.error("audio_input.max_seconds", f"needs 1 ≤ min_seconds ≤ max_seconds, got {min_s}…{max_s}")
    extra = {"mime_types": mimes} if mimes else {}
    return AudioInputRule(lo, hi, kie_field, as_list, max_bytes=max_bytes, min_seconds=min_s,
                          max_seconds=max_s, **extra)


def _check_option_value(options: dict[str, OptionSpec], name: Any, value: Any, where: _Where,
                        field: str) -> None:
    opt = options.get(name)
    if opt is None:
        shown = ", ".join(options) or "none"
        raise where.error(field, f"names no option of the model: {name!r} (options: {shown})")
    if value not in opt.values or any(type(value) is not type(v) for v in opt.values if v == value):
        raise where.error(field, f"{value!r} is not a value of {name}")


def _price(raw: Any, options: tuple[OptionSpec, ...], audio: AudioInputRule | None,
           where: _Where) -> PriceRule:
    if not isinstance(raw, dict):
        raise where.error("price", "is required: a table with at least `stars`")
    by_name = {o.name: o for o in options}
    stars = _fraction(_need(raw, "stars", where, (int, float, str), "price."), where, "price.stars")
    credits = _fraction(raw["credits"], where, "price.credits") if "credits" in raw else None
    tiers = []
    for i, tier in enumerate(raw.get("tiers", [])):
        path = f"price.tiers[{i}]"
        if not isinstance(tier, dict) or not isinstance(tier.get("when"), dict) or not tier["when"]:
            raise where.error(path + ".when", "must be a table of option = value")
        for name, value in tier["when"].items():
            _check_option_value(by_name, name, value, where, f"{path}.when.{name}")
        tiers.append(PriceTier(
            when=tuple(tier["when"].items()),
            stars=_fraction(_need(tier, "stars", where, (int, float, str), path + "."), where, path + ".stars"),
            credits=_fraction(tier["credits"], where, path + ".credits") if "credits" in tier else None,
        ))
    factors = []
    for i, factor in enumerate(raw.get("factors", [])):
        path = f"price.factors[{i}]"
        if not isinstance(factor, dict):
            raise where.error(path, "must be a table {option, value, times}")
        name = _need(factor, "option", where, str, path + ".")
        _check_option_value(by_name, name, factor.get("value"), where, path + ".value")
        times = _fraction(_need(factor, "times", where, (int, float, str), path + "."), where, path + ".times")
        if times <= 0:
            raise where.error(path + ".times", "must be more than 0")
        factors.append(PriceFactor(name, factor["value"], times))
    per_second = raw.get("per_second")
    if per_second == "audio":
        if audio is None:
            raise where.error("price.per_second", '"audio" needs an audio_input')
    elif per_second is not None:
        opt = by_name.get(per_second)
        if opt is None:
            raise where.error("price.per_second", f"names no option of the model: {per_second!r}")
        try:
            if any(int(v) <= 0 for v in opt.values):
                raise ValueError
        except (TypeError, ValueError):
            raise where.error("price.per_second", f"option {per_second} must hold whole seconds") from None
    return PriceRule(stars=stars, tiers=tuple(tiers), factors=tuple(factors), per_second=per_second,
                     credits=credits)


def _extra(raw: Any, where: _Where) -> tuple[ExtraField, ...]:
    result = []
    for i, item in enumerate(raw or []):
        path = f"extra[{i}]."
        if not isinstance(item, dict):
            raise where.error(f"extra[{i}]", "must be a table")
        name = _need(item, "name", where, str, path)
        kind = item.get("kind")
        if kind not in ("bool", "int", "enum", "url", "string"):
            raise where.error(f"extra.{name}.kind", f"must be bool, int, enum, url or string, got {kind!r}")
        values = tuple(item.get("values", ()))
        if kind == "enum" and not values:
            raise where.error(f"extra.{name}.values", "an enum lists its values")
        result.append(ExtraField(name, kind, item.get("min"), item.get("max"), values))
    return tuple(result)


def _spec(raw: dict, where: _Where) -> ModelSpec:
    if isinstance(raw.get("key"), str) and raw["key"].strip():
        where.key = raw["key"]
    unknown = set(raw) - _MODEL_KEYS
    if unknown:
        raise where.error(sorted(unknown)[0], f"is not a model field (fields: {', '.join(sorted(_MODEL_KEYS))})")
    key = _need(raw, "key", where, str)
    if not key.replace("_", "").isalnum() or not key.islower() or len(key) > 40:
        raise where.error("key", "must be lowercase letters, digits and _ (at most 40)")
    where.key = key
    name = _need(raw, "name", where, str)
    kie_model = _need(raw, "kie_model", where, str)
    api = raw.get("api", "market")
    if api not in APIS:
        raise where.error("api", f"must be one of {', '.join(APIS)}, got {api!r}")
    kind = _enum(Kind, _need(raw, "kind", where, str), where, "kind")
    mode = _enum(Mode, _need(raw, "mode", where, str), where, "mode")
    job = _enum(Job, raw["job"], where, "job") if "job" in raw else None
    order = raw.get("order", 0)
    if isinstance(order, bool) or not isinstance(order, int):
        raise where.error("order", "must be a whole number")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise where.error("enabled", "must be true or false")
    description = raw.get("description")
    if not isinstance(description, dict) or any(
            not isinstance(description.get(lang), str) or not description[lang].strip() for lang in LANGUAGES):
        raise where.error("description", "needs one line in each language: {en = \"…\", ru = \"…\"}")
    if any(len(line) > 120 or "\n" in line for line in description.values()):
        raise where.error("description", "is one line of at most 120 characters per language")
    prompt = raw.get("prompt", {"min": 1, "max": 1000})
    if prompt is False:
        prompt_min = prompt_max = 0
    else:
        if not isinstance(prompt, dict):
            raise where.error("prompt", "must be {min, max} or false")
        prompt_min = _need(prompt, "min", where, int, "prompt.")
        prompt_max = _need(prompt, "max", where, int, "prompt.")
        if not 1 <= prompt_min <= prompt_max:
            raise where.error("prompt", f"needs 1 ≤ min ≤ max, got {prompt_min}…{prompt_max}")
    options = _options(raw.get("options", []), where)
    image = _image(raw.get("image_input"), where)
    audio = _audio(raw.get("audio_input"), where)
    if mode in (Mode.I2I, Mode.I2V) and (image is None or image.min_count < 1):
        raise where.error("image_input", f"mode {mode.value} needs an image_input of at least 1 image")
    if mode in (Mode.T2I, Mode.T2V) and image is not None and image.min_count > 0:
        raise where.error("image_input.min", f"mode {mode.value} makes from text: its pictures are "
                                             "optional (min = 0), or use an i2i/i2v mode")
    if kind is Kind.IMAGE and mode not in (Mode.T2I, Mode.I2I) or kind is Kind.VIDEO and mode not in (
            Mode.T2V, Mode.I2V):
        raise where.error("mode", f"{mode.value} does not make a {kind.value}")
    if prompt is False and (image is None or image.min_count < 1):
        raise where.error("prompt", "a model without a prompt needs an image_input of at least 1 image")
    pricing = _price(raw.get("price"), options, audio, where)
    fixed = raw.get("fixed", {})
    if not isinstance(fixed, dict):
        raise where.error("fixed", "must be a table of field = value")
    extra = _extra(raw.get("extra"), where)
    model_field = raw.get("model_field")
    fields = ["prompt"] if prompt is not False else []
    fields += [o.kie_field for o in options] + [e.name for e in extra]
    fields += [r.kie_field for r in (image, audio) if r is not None]
    if model_field is not None:
        fields.append(model_field)
    if len(set(fields)) != len(fields):
        raise where.error("options", "two inputs write the same KIE field")
    declared = {e.name: e for e in extra}
    for field, value in fixed.items():
        rule = declared.get(field)
        if rule is None:
            raise where.error(f"fixed.{field}", "must be declared in `extra` (so KIE's checks know it)")
        problem = extra_problem(rule, value)
        if problem:
            raise where.error(f"fixed.{field}", problem)
    defaults = {o.name: o.default for o in options}
    spec = ModelSpec(
        key=key, name=name, kie_model=kie_model, kind=kind, mode=mode, base_price=0, options=options,
        prompt_min=prompt_min, prompt_max=prompt_max, image_input=image,
        price_factors=pricing.factors, fixed_input=tuple(fixed.items()), extra_fields=extra, api=api,
        audio_input=audio, pricing=pricing, job=job,
        description=tuple((lang, description[lang]) for lang in LANGUAGES), order=order,
        enabled=enabled, prompt=prompt is not False, model_field=model_field, source=where.file,
    )
    base = spec.raw_price(defaults, audio.min_seconds if audio else None)
    if base <= 0:
        raise where.error("price.stars", "the price at the default options must be more than 0")
    return replace(spec, base_price=math.ceil(base))


def extra_problem(rule: ExtraField, value: Any) -> str | None:
    """Why `value` is not acceptable for the extra field, or None (shared with validate.py)."""
    if rule.kind == "bool":
        return None if isinstance(value, bool) else f"{rule.name} must be true or false"
    if rule.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or (
                rule.minimum is not None and value < rule.minimum) or (
                rule.maximum is not None and value > rule.maximum):
            return f"{rule.name} must be an integer from {rule.minimum} to {rule.maximum}"
        return None
    if rule.kind == "enum":
        if value in rule.values and any(type(value) is type(v) for v in rule.values if v == value):
            return None
        return f"{rule.name} must be one of {', '.join(str(v) for v in rule.values)} (got {value!r})"
    if rule.kind == "url":
        ok = isinstance(value, str) and value.startswith(("http://", "https://"))
        return None if ok else f"{rule.name} must be an http(s) URL"
    if not isinstance(value, str):
        return f"{rule.name} must be a string"
    if rule.maximum is not None and len(value) > rule.maximum:
        return f"{rule.name} is too long: at most {rule.maximum} characters"
    return None


def load_file(path: Path) -> list[ModelSpec]:
    where = _Where(path.name)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: not valid TOML: {exc}", field="file") from None
    models = data.get("model")
    if not isinstance(models, list) or not models:
        raise CatalogError(f"{path.name}: no [[model]] tables", field="model")
    raw_by_key: dict[str, dict] = {}
    specs = []
    for i, raw in enumerate(models):
        where = _Where(path.name, f"model[{i}]")
        if not isinstance(raw, dict):
            raise where.error("model", "must be a table")
        if "extends" in raw:
            parent = raw_by_key.get(raw["extends"])
            if parent is None:
                raise where.error("extends", f"names no earlier model of this file: {raw['extends']!r}")
            raw = {**parent, **{k: v for k, v in raw.items() if k != "extends"}}
            for drop in ("image_input", "audio_input"):
                if raw.get(drop) is False:  # `image_input = false` removes the parent's
                    del raw[drop]
        spec = _spec(raw, where)
        raw_by_key[spec.key] = raw
        specs.append(spec)
    return specs


def load_catalog(directory: Path | None = None) -> tuple[ModelSpec, ...]:
    """Every *.toml of `directory` (the packaged data by default), in (order, file) order."""
    directory = directory or DATA_DIR
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise CatalogError(f"{directory}: no model data files (*.toml)", field="file")
    specs: list[ModelSpec] = []
    for path in files:
        specs.extend(load_file(path))
    check_together(specs)
    return tuple(sorted(specs, key=lambda s: s.order))


def check_together(specs: Iterable[ModelSpec]) -> None:
    """Rules across files: unique keys, and models sharing a KIE id agree on what KIE checks."""
    seen: dict[str, ModelSpec] = {}
    by_model: dict[str, ModelSpec] = {}
    for spec in specs:
        where = _Where(spec.source, spec.key)
        if spec.key in seen:
            raise where.error("key", f"is used twice (also in {seen[spec.key].source})")
        seen[spec.key] = spec
        first = by_model.setdefault(spec.kie_model, spec)
        if first is spec:
            continue
        if (first.api, first.prompt, first.prompt_min, first.prompt_max, first.model_field) != (
                spec.api, spec.prompt, spec.prompt_min, spec.prompt_max, spec.model_field):
            raise where.error("kie_model", f"{spec.kie_model} is shared with {first.key}, whose api and "
                                           "prompt limits differ")
        theirs = {o.kie_field: o.values for o in first.options}
        for opt in spec.options:
            if opt.kie_field in theirs and set(theirs[opt.kie_field]) != set(opt.values):
                raise where.error(f"options.{opt.name}.values",
                                  f"differ from {first.key}'s for the shared {spec.kie_model}")
