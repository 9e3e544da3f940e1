"""Admins' photo templates in storage (SQLite and Postgres): a change touches only the fields
given, None returns a field to the data file, a new template is added once under races, bad
values are refused before any write, and the table has row-level security on Postgres."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from storage.errors import InvalidAmountError, InvalidFieldError


async def test_set_changes_only_the_given_fields(repo):
    assert await repo.template_rows() == []
    await repo.set_template("figurine_3d", admin_id=7, enabled=False)
    await repo.set_template("figurine_3d", admin_id=8, price=15, name_ru="Фигурка")
    [row] = await repo.template_rows()
    assert (row.key, row.enabled, row.price, row.name_ru, row.name_en, row.prompt) == (
        "figurine_3d", False, 15, "Фигурка", None, None)
    assert row.updated_by == 8 and row.updated_at.tzinfo is not None
    await repo.set_template("figurine_3d", admin_id=8, price=None)  # back to the file's price
    [row] = await repo.template_rows()
    assert (row.enabled, row.price, row.name_ru) == (False, None, "Фигурка")


async def test_concurrent_changes_to_a_new_key_make_one_row(repo):
    await asyncio.gather(*(repo.set_template("sticker", admin_id=1, price=p) for p in range(1, 9)))
    rows = await repo.template_rows()
    assert [r.key for r in rows] == ["sticker"] and rows[0].price in range(1, 9)


async def test_add_once_under_races(repo):
    results = await asyncio.gather(*(
        repo.add_template("pirate", model_key="nano_banana_2_edit", prompt=f"pirate {n}", photos=1,
                          admin_id=5, enabled=False) for n in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    [row] = await repo.template_rows()
    assert (row.model_key, row.photos, row.enabled) == ("nano_banana_2_edit", 1, False)
    assert row.prompt.startswith("pirate ")


@pytest.mark.parametrize("fields, error", [
    ({"price": -1}, InvalidAmountError),
    ({"price": "10"}, InvalidAmountError),
    ({"photos": 3}, InvalidFieldError),
    ({"name_en": "x" * 65}, InvalidFieldError),
    ({"prompt": "   "}, InvalidFieldError),
    ({"owner": 1}, InvalidFieldError),
])
async def test_bad_values_write_nothing(repo, fields, error):
    with pytest.raises(error):
        await repo.set_template("restore", admin_id=1, **fields)
    assert await repo.template_rows() == []


async def test_row_level_security_on_postgres(repo, engine, is_pg):
    if not is_pg:
        pytest.skip("row-level security is Postgres's")
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT relname, relrowsecurity FROM pg_class WHERE relname = 'templates'"))).all()
    assert rows == [("templates", True)]
