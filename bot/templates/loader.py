"""Reads the photo templates (bot/templates/data/templates.toml) and checks every field.

A problem is one TemplateError "file: template: field: problem" ("templates.toml: figurine_3d:
model: 'nano_banana_9' is not a catalog model"), raised while the settings are checked, so an
operator's edit that would break an order stops the start instead. Admin-made templates
(/templates add) pass the same `check_template`.

The file holds `[[template]]` tables:

    key          a-z, 0-9, _ (1-24; what buttons and /templates commands name)
    name         { en = "...", ru = "..." }   (up to 40 characters)
    description  { en = "...", ru = "..." }   (up to 300 characters)
    model        an image edit model of the catalog (mode i2i) taking `photos` pictures
    prompt       the fixed prompt; placeholders {subject}, {photo1}, {photo2} (two photos only)
    photos       1 (default) or 2 (templates that combine two people)
    ratio        a value of the model's aspect_ratio option (absent: the model's default)
    price        ⭐ per order (absent: the model's price at the template's options)
    example      a picture in data/examples/ (png or jpg, up to 64 KB) shown on the card
    order        position in the gallery (ascending)
    enabled      false: kept in the file, not shown
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kie_client.catalog import CatalogError, Kind, Mode, ModelSpec

DATA_FILE = Path(__file__).with_name("data") / "templates.toml"
EXAMPLES_DIR = DATA_FILE.parent / "examples"
LANGUAGES = ("en", "ru")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,23}$")
NAME_MAX = 40
DESCRIPTION_MAX = 300
MAX_PRICE = 100_000
MAX_EXAMPLE_BYTES = 64 * 1024
_FIELDS = {"key", "name", "description", "model", "prompt", "photos", "ratio", "price", "example",
           "order", "enabled"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# What each placeholder becomes: the edit models read the pictures in the order they are given.
_SUBJECT = {1: "the person in the photo",
            2: "the two people from the two photos (the first person from the first image, the "
               "second person from the second image)"}
PLACEHOLDERS = ("subject", "photo1", "photo2")


class TemplateError(CatalogError):
    """One problem of a template: "file: template: field: problem"; `.field` names the field."""


@dataclass(frozen=True)
class Template:
    key: str
    name: Mapping[str, str]
    description: Mapping[str, str]
    model: str
    prompt: str
    photos: int = 1
    ratio: str | None = None
    price: int | None = None  # None: the model's price at the template's options
    example: str | None = None
    order: int = 0
    enabled: bool = True
    admin_made: bool = field(default=False, compare=False)

    def title(self, lang: str) -> str:
        return self.name.get(lang) or self.name.get("en") or self.key

    def blurb(self, lang: str) -> str:
        return self.description.get(lang) or self.description.get("en") or ""

    def options(self) -> dict[str, Any]:
        """The model options the template fixes (the rest stay at the model's defaults)."""
        return {"aspect_ratio": self.ratio} if self.ratio else {}

    def render_prompt(self) -> str:
        """The prompt sent to KIE, placeholders filled for this many photos."""
        return self.prompt.format_map({"subject": _SUBJECT[self.photos], "photo1": "the first image",
                                       "photo2": "the second image"})


def placeholders_of(prompt: str) -> list[str]:
    """The placeholder names of a prompt; ValueError on unbalanced braces or a format spec."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(prompt):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format")
        names.append(name)
    return names


def _text_map(value: Any, where: str, limit: int) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a table {{ en = \"…\", ru = \"…\" }}, got {value!r}")
    unknown = sorted(set(value) - set(LANGUAGES))
    if unknown:
        raise ValueError(f"unknown language {unknown[0]!r}; expected en and ru")
    out = {}
    for lang in LANGUAGES:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{lang} is required (a non-empty text)")
        if len(text) > limit or _CONTROL.search(text):
            raise ValueError(f"{lang} must be at most {limit} characters without control characters")
        out[lang] = text.strip()
    return out


def check_template(template: Template, specs: Mapping[str, ModelSpec], *, file: str = "database",
                   examples: Path = EXAMPLES_DIR) -> Template:
    """Every rule a template must meet to be sold; raises TemplateError naming the field."""
    t = template

    def fail(field_name: str, problem: str) -> TemplateError:
        return TemplateError(f"{file}: {t.key}: {field_name}: {problem}", field=field_name)

    if not isinstance(t.key, str) or not KEY_RE.match(t.key):
        raise fail("key", "must be 1-24 of a-z, 0-9 and _, starting with a letter")
    for name, limit in (("name", NAME_MAX), ("description", DESCRIPTION_MAX)):
        try:
            _text_map(dict(getattr(t, name)), name, limit)
        except ValueError as exc:
            raise fail(name, str(exc)) from None
    if isinstance(t.photos, bool) or t.photos not in (1, 2):
        raise fail("photos", f"must be 1 or 2, got {t.photos!r}")
    spec = specs.get(t.model) if isinstance(t.model, str) else None
    if spec is None:
        raise fail("model", f"{t.model!r} is not a catalog model")
    rule = spec.image_input
    if spec.mode != Mode.I2I or spec.kind != Kind.IMAGE or rule is None or not spec.prompt:
        raise fail("model", f"{t.model!r} is not an image edit model (mode i2i)")
    if not rule.min_count <= t.photos <= rule.max_count:
        raise fail("photos", f"{t.model!r} takes {rule.min_count}-{rule.max_count} photos")
    if not isinstance(t.prompt, str) or not t.prompt.strip():
        raise fail("prompt", "is required (a non-empty text)")
    try:
        names = placeholders_of(t.prompt)
    except ValueError as exc:
        raise fail("prompt", f"{exc} (write {{{{ and }}}} for a brace)") from None
    allowed = PLACEHOLDERS if t.photos == 2 else ("subject", "photo1")
    for name in names:
        if name not in allowed:
            raise fail("prompt", f"unknown placeholder {{{name}}}; use " +
                       ", ".join(f"{{{n}}}" for n in allowed))
    rendered = t.render_prompt()
    if not spec.prompt_min <= len(rendered) <= spec.prompt_max or _CONTROL.search(rendered):
        raise fail("prompt", f"must be {spec.prompt_min}-{spec.prompt_max} characters for "
                             f"{spec.name}, without control characters")
    if t.ratio is not None:
        option = next((o for o in spec.options if o.name == "aspect_ratio"), None)
        if option is None:
            raise fail("ratio", f"{spec.name} has no aspect ratio")
        if t.ratio not in option.values:
            raise fail("ratio", f"{t.ratio!r} is not one of {', '.join(map(str, option.values))}")
    if t.price is not None and (isinstance(t.price, bool) or not isinstance(t.price, int)
                                or not 1 <= t.price <= MAX_PRICE):
        raise fail("price", f"must be a whole number of ⭐ from 1 to {MAX_PRICE}, got {t.price!r}")
    if t.example is not None:
        path = examples / t.example if isinstance(t.example, str) else None
        if (path is None or "/" in t.example or "\\" in t.example
                or path.suffix.lower() not in (".png", ".jpg", ".jpeg")):
            raise fail("example", f"must be a .png or .jpg file name in {examples.name}/")
        if not path.is_file():
            raise fail("example", f"{t.example!r} not found in {examples}")
        if path.stat().st_size > MAX_EXAMPLE_BYTES:
            raise fail("example", f"{t.example!r} is larger than {MAX_EXAMPLE_BYTES // 1024} KB")
    return t


def _template(raw: Any, file: str, index: int) -> Template:
    key = raw.get("key", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"

    def fail(field_name: str, problem: str) -> TemplateError:
        return TemplateError(f"{file}: {key}: {field_name}: {problem}", field=field_name)

    if not isinstance(raw, dict):
        raise fail("template", "must be a table")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise fail(unknown[0], "unknown field")
    for name in ("key", "name", "description", "model", "prompt"):
        if name not in raw:
            raise fail(name, "is required")
    for name, kind in (("key", str), ("model", str), ("prompt", str), ("ratio", str),
                       ("example", str), ("order", int), ("enabled", bool)):
        value = raw.get(name)
        if value is not None and (not isinstance(value, kind)
                                  or (kind is int and isinstance(value, bool))):
            raise fail(name, f"must be {'a text' if kind is str else kind.__name__}, got {value!r}")
    for name, limit in (("name", NAME_MAX), ("description", DESCRIPTION_MAX)):
        try:
            _text_map(raw[name], name, limit)
        except ValueError as exc:
            raise fail(name, str(exc)) from None
    return Template(key=raw["key"], name=_text_map(raw["name"], "name", NAME_MAX),
                    description=_text_map(raw["description"], "description", DESCRIPTION_MAX),
                    model=raw["model"], prompt=raw["prompt"].strip(), photos=raw.get("photos", 1),
                    ratio=raw.get("ratio"), price=raw.get("price"), example=raw.get("example"),
                    order=raw.get("order", index), enabled=raw.get("enabled", True))


def load_templates(path: Path | None = None, specs: Iterable[ModelSpec] | None = None
                   ) -> tuple[Template, ...]:
    """Every template of the file, checked against the catalog's specs, in gallery order."""
    path = Path(path) if path is not None else DATA_FILE
    if specs is None:
        from kie_client.catalog import MODELS

        specs = MODELS
    by_key = {spec.key: spec for spec in specs}
    file = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"{path}: file not found", field="file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TemplateError(f"{file}: not a readable TOML file: {exc}", field="file") from None
    extra = sorted(set(data) - {"template"})
    if extra:
        raise TemplateError(f"{file}: {extra[0]}: unknown table; expected [[template]]", field=extra[0])
    raw = data.get("template")
    if not isinstance(raw, list) or not raw:
        raise TemplateError(f"{file}: no [[template]] tables", field="template")
    seen: set[str] = set()
    out = []
    for index, item in enumerate(raw):
        template = check_template(_template(item, file, index), by_key, file=file,
                                  examples=path.parent / "examples")
        if template.key in seen:
            raise TemplateError(f"{file}: {template.key}: key: used twice", field="key")
        seen.add(template.key)
        out.append(template)
    return tuple(sorted(out, key=lambda t: t.order))


__all__ = ["DATA_FILE", "EXAMPLES_DIR", "MAX_PRICE", "PLACEHOLDERS", "Template", "TemplateError",
           "check_template", "load_templates", "placeholders_of"]
