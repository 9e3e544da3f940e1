"""Database URLs as operators paste them: libpq's sslmode, bad ports, postgres:// schemes."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage.db import create_engine
from storage.errors import DatabaseURLError


def test_sslmode_becomes_asyncpg_ssl():
    engine = create_engine("postgres://u:p@db.example.com:6543/postgres?sslmode=require")
    assert engine.url.query.get("ssl") == "require"
    assert "sslmode" not in engine.url.query


async def test_sslmode_url_connects_to_real_postgres(pg_url):
    engine = create_engine(pg_url + ("&" if "?" in pg_url else "?") + "sslmode=disable")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar() == 1
    finally:
        await engine.dispose()


def test_unparseable_port_is_a_typed_error_without_the_password():
    with pytest.raises(DatabaseURLError) as info:
        create_engine("postgresql://u:secret-pw@db.example.com:notaport/db")
    assert "secret-pw" not in str(info.value)
