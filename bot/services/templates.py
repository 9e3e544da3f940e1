"""TemplateService: the photo templates on sale — the data file merged with admins' changes.

The data file (bot/templates/data/templates.toml, or TEMPLATES_FILE) is read and checked once at
start; admins' changes and their own templates live in the templates table (/templates in chat)
and every process re-reads them at most every REFRESH_SECONDS before a template screen or order,
so a change reaches every process within seconds; the process where the admin made it applies it
at once. Every change is checked with the file's rules (bot.templates.check_template) before it
is written, so a row can only name an edit model, a valid ratio and known placeholders.

A template's price is read when the order is charged (the Use button carries the price it
showed; a different one now is refused before any charge, as the model card's Generate is).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bot.templates import EXAMPLES_DIR, Template, TemplateError, check_template
from kie_client.catalog import Catalog
from bot.services.reload import ThrottledReload
from storage.repository import Repository, TemplateRow

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0
ADMIN_ORDER = 10_000  # admin-made templates follow the file's in the gallery
DEFAULT_EXAMPLE = "_default.png"


class UnknownTemplateError(KeyError):
    """No template has this key."""


class TemplateTakenError(ValueError):
    """/templates add with a key already in use."""


def _overlay(base: Template | None, row: TemplateRow) -> Template | None:
    """The template a row describes: the file's template with the row's fields over it, or an
    admin-made one (None while it lacks a model or prompt)."""
    name = dict(base.name) if base else {"en": row.key, "ru": row.key}
    description = dict(base.description) if base else {"en": row.key, "ru": row.key}
    for lang in ("en", "ru"):
        name[lang] = getattr(row, f"name_{lang}") or name[lang]
        description[lang] = getattr(row, f"description_{lang}") or description[lang]
    if base is None:
        if not row.model_key or not row.prompt:
            return None
        base = Template(key=row.key, name=name, description=description, model=row.model_key,
                        prompt=row.prompt, photos=row.photos or 1, order=ADMIN_ORDER,
                        enabled=False, admin_made=True)
    return replace(base, name=name, description=description,
                   model=row.model_key or base.model, prompt=row.prompt or base.prompt,
                   photos=row.photos or base.photos, ratio=row.ratio or base.ratio,
                   price=row.price if row.price is not None else base.price,
                   enabled=row.enabled if row.enabled is not None else base.enabled)


class TemplateService:
    def __init__(self, repository: Repository, catalog: Catalog, base: Sequence[Template], *,
                 examples: Path = EXAMPLES_DIR, monotonic=time.monotonic,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        """`examples`: the folder of the data file's example pictures (TEMPLATES_FILE's own
        examples/ beside it, or the packaged one)."""
        self.repository = repository
        self.catalog = catalog
        self.examples = examples
        self._base = {t.key: t for t in base}
        self._current: dict[str, Template] = dict(self._base)
        self._reload = ThrottledReload(lambda: self.repository.template_rows(), self._apply,
                                       what="templates", every=refresh_seconds,
                                       monotonic=monotonic)
        # Telegram's file_id of each example picture once sent (per process and bot): the bytes
        # are uploaded once, then every card reuses Telegram's copy.
        self.file_ids: dict[str, str] = {}

    def _specs(self) -> dict:
        return {spec.key: spec for spec in self.catalog.models()}

    def _check(self, template: Template) -> Template:
        return check_template(template, self._specs(), examples=self.examples)

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read admins' rows when they may be stale; a database hiccup keeps the last ones
        (the gallery keeps what it had)."""
        await self._reload(force=force)

    def _apply(self, rows: list) -> None:
        current = dict(self._base)
        for row in rows:
            merged = _overlay(self._base.get(row.key), row)
            if merged is None:
                continue
            try:
                current[row.key] = self._check(merged)
            except TemplateError as exc:  # e.g. its model left the catalog: skip the row
                log.warning("template row ignored: %s", exc)
        self._current = current

    # -- what users see ---------------------------------------------------------------------

    def all(self) -> list[Template]:
        return sorted(self._current.values(), key=lambda t: (t.order, t.key))

    def visible(self) -> list[Template]:
        """On sale now: switched on, and its model on and served (/models may switch it off)."""
        return [t for t in self.all() if t.enabled and self.catalog.sellable(t.model)]

    def get(self, key: str) -> Template | None:
        return self._current.get(key)

    def on_sale(self, key: str) -> Template | None:
        t = self._current.get(key)
        return t if t is not None and t.enabled and self.catalog.sellable(t.model) else None

    def price(self, template: Template) -> int:
        """The ⭐ an order costs now: the template's own price, else its model's at its options."""
        if template.price is not None:
            return template.price
        options = self.catalog.normalise_options(template.model, template.options())
        return self.catalog.price(template.model, options)

    def example(self, template: Template) -> tuple[str, bytes | None]:
        """(name, bytes) of the card's picture, or (name, None) when Telegram's file_id is known
        (`file_ids[name]`). A template without one (admin-made) shows the packaged default."""
        path = (self.examples / template.example if template.example
                else EXAMPLES_DIR / DEFAULT_EXAMPLE)
        name = str(path)
        if name in self.file_ids:
            return name, None
        return name, path.read_bytes()

    # -- what admins do ---------------------------------------------------------------------

    def _known(self, key: str) -> Template:
        t = self._current.get(key)
        if t is None:
            raise UnknownTemplateError(key)
        return t

    async def _write(self, key: str, candidate: Template, *, admin_id: int, **fields) -> None:
        self._check(candidate)  # TemplateError: nothing written
        await self.repository.set_template(key, admin_id=admin_id, **fields)
        await self.refresh(force=True)

    async def set_enabled(self, key: str, enabled: bool, *, admin_id: int) -> Template:
        t = self._known(key)
        await self._write(key, replace(t, enabled=enabled), admin_id=admin_id, enabled=enabled)
        return self._known(key)

    async def set_price(self, key: str, price: int | None, *, admin_id: int) -> Template:
        """`price` ⭐ per order; None: back to the file's price (or the model's)."""
        t = self._known(key)
        base = self._base.get(key)
        shown = price if price is not None else (base.price if base else None)
        await self._write(key, replace(t, price=shown), admin_id=admin_id, price=price)
        return self._known(key)

    async def set_text(self, key: str, field: str, lang: str, text: str, *,
                       admin_id: int) -> Template:
        """field: name | description; lang: en | ru."""
        if field not in ("name", "description") or lang not in ("en", "ru"):
            raise ValueError(f"{field} {lang}")
        t = self._known(key)
        values = dict(getattr(t, field))
        values[lang] = text.strip()
        await self._write(key, replace(t, **{field: values}), admin_id=admin_id,
                          **{f"{field}_{lang}": text.strip()})
        return self._known(key)

    async def set_prompt(self, key: str, prompt: str, *, admin_id: int) -> Template:
        t = self._known(key)
        await self._write(key, replace(t, prompt=prompt.strip()), admin_id=admin_id,
                          prompt=prompt.strip())
        return self._known(key)

    async def set_ratio(self, key: str, ratio: str | None, *, admin_id: int) -> Template:
        t = self._known(key)
        base = self._base.get(key)
        await self._write(key, replace(t, ratio=ratio if ratio else (base.ratio if base else None)),
                          admin_id=admin_id, ratio=ratio)
        return self._known(key)

    async def add(self, key: str, *, model: str, photos: int, prompt: str,
                  admin_id: int) -> Template:
        """A new template, switched off until the admin names it and switches it on."""
        if key in self._current:
            raise TemplateTakenError(key)
        candidate = Template(key=key, name={"en": key, "ru": key}, description={"en": key, "ru": key},
                             model=model, prompt=prompt.strip(), photos=photos, enabled=False,
                             order=ADMIN_ORDER, admin_made=True)
        self._check(candidate)
        if not await self.repository.add_template(key, model_key=model, prompt=prompt.strip(),
                                                  photos=photos, admin_id=admin_id, enabled=False):
            raise TemplateTakenError(key)
        await self.refresh(force=True)
        return self._known(key)


__all__ = ["REFRESH_SECONDS", "TemplateService", "TemplateTakenError", "UnknownTemplateError"]
