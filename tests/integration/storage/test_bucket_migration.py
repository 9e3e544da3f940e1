"""Migrations 0002 and 0007 on a Postgres that looks like Supabase (a minimal fake `storage`
schema), and their absence of effect elsewhere. What anon can do at head: tests/e2e/test_supabase_rls.py."""

from __future__ import annotations

import sqlalchemy as sa

from migrations import runner as migrate
from storage.db import create_engine
from tests.integration.storage.conftest import fresh_pg_database

FAKE_SUPABASE = [
    # Roles are cluster-wide; create them only if missing and tolerate a concurrent creator.
    """DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN; END IF;
       EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
       END $$""",
    "CREATE SCHEMA auth",
    "CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS "
    "$$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$",
    "CREATE SCHEMA storage",
    "CREATE TABLE storage.buckets (id text PRIMARY KEY, name text NOT NULL, public boolean DEFAULT false)",
    "CREATE TABLE storage.objects (id bigserial PRIMARY KEY, bucket_id text REFERENCES storage.buckets(id),"
    " name text, owner uuid)",
    "ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY",
    "CREATE FUNCTION storage.foldername(name text) RETURNS text[] LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT (string_to_array(name, '/'))[1:array_length(string_to_array(name, '/'), 1) - 1] $$",
    "GRANT USAGE ON SCHEMA storage, auth TO authenticated",
    "GRANT SELECT, INSERT ON storage.objects TO authenticated",
    "GRANT USAGE ON SEQUENCE storage.objects_id_seq TO authenticated",
]
USER_UUID = "6f1c1c8e-7a53-4a55-9d3e-2b1d2b7c9a10"
BUCKET_REVISION = "0002_supabase_bucket"


async def _insert_as_user(engine, name: str) -> bool:
    """Insert an object as an authenticated Supabase user; False when RLS refuses it."""
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("SET LOCAL ROLE authenticated"))
            await conn.execute(sa.text(f"SELECT set_config('request.jwt.claim.sub', '{USER_UUID}', true)"))
            await conn.execute(
                sa.text("INSERT INTO storage.objects (bucket_id, name) VALUES ('generations', :n)"), {"n": name}
            )
        return True
    except sa.exc.DBAPIError as exc:
        assert "row-level security" in str(exc)
        return False


async def _policies(conn) -> dict[str, tuple[str, list[str], str | None, str | None]]:
    rows = await conn.execute(sa.text(
        "SELECT policyname, cmd, roles::text[], qual, with_check FROM pg_policies "
        "WHERE schemaname = 'storage' AND tablename = 'objects'"
    ))
    return {r[0]: (r[1], list(r[2]), r[3], r[4]) for r in rows}


async def test_creates_bucket_and_policies_on_supabase_like_postgres(pg_url):
    async with fresh_pg_database(pg_url) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                for statement in FAKE_SUPABASE:
                    await conn.execute(sa.text(statement))
            await migrate.upgrade(engine, BUCKET_REVISION)
            await migrate.downgrade(engine, "0001_initial")
            await migrate.upgrade(engine, BUCKET_REVISION)  # re-running after a downgrade works
            async with engine.connect() as conn:
                bucket = (await conn.execute(sa.text("SELECT id, name, public FROM storage.buckets"))).all()
                assert bucket == [("generations", "generations", True)]
                policies = await _policies(conn)
            read = policies["kiebot generations public read"]
            assert read[0] == "SELECT" and read[1] == ["public"] and "generations" in read[2]
            insert = policies["kiebot generations owner insert"]
            assert insert[0] == "INSERT" and insert[1] == ["authenticated"]
            assert "foldername" in insert[3] and "auth.uid()" in insert[3]
            service = policies["kiebot generations service role"]
            assert service[0] == "ALL" and service[1] == ["service_role"]
            assert {p[0] for p in policies.values()} == {"SELECT", "INSERT", "UPDATE", "DELETE", "ALL"}
            # the policies really work: own folder yes, someone else's no
            assert await _insert_as_user(engine, f"{USER_UUID}/image/1_0_1.png")
            assert not await _insert_as_user(engine, "someone-else/image/1_0_1.png")

            # 0007 takes the listing and the never-matching auth.uid() policies away again …
            await migrate.upgrade(engine)
            async with engine.connect() as conn:
                assert set(await _policies(conn)) == {"kiebot generations service role"}
            assert not await _insert_as_user(engine, f"{USER_UUID}/image/2_0_1.png")
            # … and its downgrade puts them back as 0002 made them.
            await migrate.downgrade(engine, BUCKET_REVISION)
            async with engine.connect() as conn:
                assert await _policies(conn) == policies

            async with engine.begin() as conn:
                await conn.execute(sa.text(
                    "DELETE FROM storage.objects"
                ))
                await conn.execute(sa.text(
                    "INSERT INTO storage.objects (bucket_id, name) VALUES ('generations', 'u/image/1_0_1.png')"
                ))
            await migrate.downgrade(engine)
            async with engine.connect() as conn:
                assert await _policies(conn) == {}
                # a bucket that still holds files is kept
                assert await conn.scalar(sa.text("SELECT count(*) FROM storage.buckets")) == 1
        finally:
            await engine.dispose()


async def test_does_nothing_on_plain_postgres(pg_url):
    async with fresh_pg_database(pg_url) as url:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine)
            async with engine.connect() as conn:
                assert await conn.scalar(sa.text("SELECT to_regnamespace('storage')")) is None
                assert await migrate.current_revision(engine) == migrate.head_revision()
            await migrate.downgrade(engine)
        finally:
            await engine.dispose()


async def test_does_nothing_on_sqlite(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3")
    try:
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
