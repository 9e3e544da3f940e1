"""Admins' photo templates (the templates table): changes to the data file's templates and
templates made in chat (/templates). bot/services/templates.py merges them with the file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.dialect import insert_ignoring_duplicates
from storage.errors import InvalidFieldError
from storage.repository._base import RepositoryBase, check_amount, check_id, check_text, to_utc, utcnow
from storage.schema import templates


@dataclass(frozen=True)
class TemplateRow:
    key: str
    model_key: str | None
    name_en: str | None
    name_ru: str | None
    description_en: str | None
    description_ru: str | None
    prompt: str | None
    photos: int | None
    ratio: str | None
    price: int | None
    enabled: bool | None
    updated_by: int | None
    updated_at: datetime


# The columns an admin changes, with the longest text each takes (None: not a text).
TEMPLATE_FIELDS: dict[str, int | None] = {
    "model_key": 64, "name_en": 64, "name_ru": 64, "description_en": 1000,
    "description_ru": 1000, "prompt": 20000, "photos": None, "ratio": 16, "price": None,
    "enabled": None,
}


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in TEMPLATE_FIELDS:
            raise InvalidFieldError(f"templates has no field {name!r}")
        if value is None:
            out[name] = None  # back to the data file's value
        elif name == "price":
            out[name] = check_amount("price", value, allow_zero=True)
        elif name == "photos":
            if isinstance(value, bool) or value not in (1, 2):
                raise InvalidFieldError(f"photos must be 1 or 2, got {value!r}")
            out[name] = value
        elif name == "enabled":
            out[name] = bool(value)
        else:
            out[name] = check_text(name, value, max_length=TEMPLATE_FIELDS[name])
    return out


class TemplateRepository(RepositoryBase):
    async def template_rows(self) -> list[TemplateRow]:
        async with self._read() as conn:
            rows = await conn.execute(sa.select(templates).order_by(templates.c.key))
            return [TemplateRow(r.key, r.model_key, r.name_en, r.name_ru, r.description_en,
                                r.description_ru, r.prompt, r.photos, r.ratio, r.price, r.enabled,
                                r.updated_by, to_utc(r.updated_at)) for r in rows]

    async def set_template(self, key: str, *, admin_id: int | None = None,
                           now: datetime | None = None, **fields: Any) -> None:
        """Change the given fields of one template (None: back to the data file's value);
        other fields stay. The row is created first if needed, race-free (ON CONFLICT)."""
        check_text("key", key, max_length=32)
        if admin_id is not None:
            check_id("admin_id", admin_id)
        changes = _checked(fields)
        stamp = {"updated_by": admin_id, "updated_at": to_utc(now) or utcnow()}
        async with self._tx() as conn:
            await conn.execute(insert_ignoring_duplicates(conn, templates, key="key",
                                                          rows=[{"key": key, **stamp}]))
            await conn.execute(sa.update(templates).where(templates.c.key == key)
                               .values(**changes, **stamp))

    async def add_template(self, key: str, *, model_key: str, prompt: str, photos: int,
                           admin_id: int, now: datetime | None = None, **fields: Any) -> bool:
        """A new admin-made template; False (nothing written) when the key is taken."""
        check_text("key", key, max_length=32)
        check_id("admin_id", admin_id)
        values = _checked({"model_key": model_key, "prompt": prompt, "photos": photos, **fields})
        row = {"key": key, **values, "updated_by": admin_id, "updated_at": to_utc(now) or utcnow()}
        async with self._tx() as conn:
            inserted = await conn.execute(
                insert_ignoring_duplicates(conn, templates, key="key", rows=[row])
                .returning(templates.c.key))
            return inserted.first() is not None
