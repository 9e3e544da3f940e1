"""Supabase locked down (migration 0007, and the tables of 0008, 0009, 0011, 0014 and 0015 the same way): what
`kiebot migrate --sql` prints, pasted into a database that looks like Supabase, leaves nothing for
the public anon key to read or list, while the bot's own connection (the tables' owner) goes on
reading and writing.

The database is made Supabase-like the way that matters here: the `anon`, `authenticated` and
`service_role` roles, the default grants Supabase gives `anon`/`authenticated` on every new table
in `public` (the hole: without RLS they read everything), and a `storage` schema with `buckets`
and `objects` (RLS on, as Supabase has it). The migration runs as a non-superuser owner role, as
on Supabase, so "the owner can" is not a superuser's bypass. Child processes (`kiebot`, `psql`):
this tier."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _admin_dsn, fresh_pg_database, require_tool

TABLES = ("users", "generations", "credit_ledger", "payments", "updates_inbox", "model_overrides",
          "support_messages", "support_admin_messages",
          # 0011: photo templates
          "templates",
          # 0014: referrals, promo codes, daily counters and free uses
          "referrals", "promo_codes", "promo_redemptions", "daily_counters", "daily_free_uses",
          # 0015: broadcasts
          "broadcasts", "broadcast_recipients")

SUPABASE_LIKE = [
    # Roles are cluster-wide: created only if missing, tolerating a concurrent creator.
    """DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN; END IF;
       EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
       END $$""",
    "GRANT USAGE, CREATE ON SCHEMA public TO {owner}",
    "GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role",
    # What Supabase does for every table the owner creates in public.
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
    "GRANT ALL ON TABLES TO anon, authenticated, service_role",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
    "GRANT ALL ON SEQUENCES TO anon, authenticated, service_role",
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
    "ALTER TABLE storage.buckets OWNER TO {owner}",
    "ALTER TABLE storage.objects OWNER TO {owner}",
    "GRANT USAGE ON SCHEMA storage, auth TO {owner}, anon, authenticated, service_role",
    "GRANT ALL ON storage.objects, storage.buckets TO anon, authenticated, service_role",
    # A canary created the same way as the bot's tables, without RLS: proves the grants above
    # really open a table to anon, so the refusals below are the migration's doing.
    "SET ROLE {owner}",
    "CREATE TABLE public.canary (x int)",
    "INSERT INTO public.canary VALUES (1)",
    "RESET ROLE",
]


def _migrate_sql() -> str:
    """Exactly what an operator pastes into Supabase's SQL editor."""
    proc = subprocess.run([sys.executable, "-m", "kiebot", "migrate", "--sql"],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert proc.returncode == 0, proc.stderr
    assert "0007_supabase_rls" in proc.stdout and "0009_support" in proc.stdout and "0011_templates" in proc.stdout
    assert "0015_broadcast" in proc.stdout
    return proc.stdout


def _psql(url: str, sql: str, *, role: str) -> None:
    parsed = make_url(url)
    proc = subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "-X", "-q", "-h", parsed.host or "127.0.0.1",
         "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres", "-d", parsed.database],
        input=sql, text=True, capture_output=True, timeout=120,
        # Every statement runs as the owner role, as the SQL editor runs as `postgres` there.
        env={**os.environ, "PGPASSWORD": parsed.password or "", "PGOPTIONS": f"-c role={role}"},
    )
    assert proc.returncode == 0, proc.stderr


async def _as(conn, role: str, query: str):
    """Run `query` as `role` in a transaction rolled back afterwards; the rows, or the error."""
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(f"SET LOCAL ROLE {role}")
        return await conn.fetch(query)
    except asyncpg.PostgresError as exc:
        return exc
    finally:
        await tx.rollback()


@pytest.fixture
async def owner_role(pg_url):
    name = f"kiebot_t_owner_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_admin_dsn(pg_url))
    try:
        await admin.execute(f"CREATE ROLE {name} NOLOGIN")
        yield name
    finally:
        # The databases it owned objects in are dropped first (fresh_pg_database exits first).
        await admin.execute(f"DROP ROLE IF EXISTS {name}")
        await admin.close()


async def test_anon_reads_and_lists_nothing_while_the_owner_works_on(pg_url, owner_role):
    require_tool("psql")
    sql = _migrate_sql()
    owner = owner_role
    async with fresh_pg_database(pg_url) as url:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            for statement in SUPABASE_LIKE:
                await conn.execute(statement.format(owner=owner))
            assert await _as(conn, "anon", "SELECT x FROM public.canary") == [(1,)]
            canary_seq = "CREATE SEQUENCE public.canary_seq"
            await conn.execute(f"SET ROLE {owner}; {canary_seq}; RESET ROLE")

            _psql(url, sql, role=owner)

            # The bot's connection: the owner writes and reads as before.
            await conn.execute(f"SET ROLE {owner}")
            await conn.execute("INSERT INTO users (id, balance) VALUES (42, 50)")
            await conn.execute(
                "INSERT INTO credit_ledger (user_id, delta, reason) VALUES (42, 50, 'signup_bonus')")
            await conn.execute("INSERT INTO generations (user_id, chat_id, kind, model_key) "
                               "VALUES (42, 42, 'image', 'seedream_45')")
            await conn.execute("INSERT INTO storage.objects (bucket_id, name) "
                               "VALUES ('generations', '42/image/1_0_1_secret.png')")
            await conn.execute("RESET ROLE")
            for table in ("users", "credit_ledger", "generations"):
                assert len(await _as(conn, owner, f"SELECT * FROM {table}")) == 1, table
            assert len(await _as(conn, owner, "SELECT * FROM storage.objects")) == 1
            assert await _as(conn, owner, "SELECT public FROM storage.buckets "
                                          "WHERE id = 'generations'") == [(True,)]

            for role in ("anon", "authenticated"):
                for table in TABLES:
                    # Supabase's default grants were revoked: the Data API says no outright.
                    denied = await _as(conn, role, f"SELECT * FROM {table}")
                    assert isinstance(denied, asyncpg.InsufficientPrivilegeError), (role, table)
                    written = await _as(conn, role, f"DELETE FROM {table}")
                    assert isinstance(written, asyncpg.InsufficientPrivilegeError), (role, table)
                for seq in ("generations_id_seq", "credit_ledger_id_seq", "support_messages_id_seq"):
                    burnt = await _as(conn, role, f"SELECT nextval('{seq}')")
                    assert isinstance(burnt, asyncpg.InsufficientPrivilegeError), (role, seq)
                # The bucket lists nothing: no SELECT policy is left for anyone but the service.
                assert await _as(conn, role, "SELECT name FROM storage.objects") == [], role

            # Should a grant come back (a dashboard click, a later default privilege), RLS with no
            # policy still shows anon nothing and lets it change nothing.
            await conn.execute("GRANT ALL ON users, credit_ledger, credit_ledger_id_seq TO anon")
            assert await _as(conn, "anon", "SELECT * FROM users") == []
            assert await _as(conn, "anon", "UPDATE users SET balance = 1000000 RETURNING id") == []
            refused = await _as(conn, "anon", "INSERT INTO credit_ledger (user_id, delta, reason) "
                                              "VALUES (42, 999, 'purchase') RETURNING id")
            assert isinstance(refused, asyncpg.InsufficientPrivilegeError)
            assert "row-level security" in str(refused)
            assert await conn.fetchval("SELECT balance FROM users WHERE id = 42") == 50

            # Tables and sequences that are not the bot's keep Supabase's grants.
            assert await _as(conn, "anon", "SELECT x FROM public.canary") == [(1,)]
            assert await _as(conn, "anon", "SELECT nextval('public.canary_seq')") == [(1,)]

            rls = dict(await conn.fetch(
                "SELECT relname, relrowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relkind = 'r' AND relname = ANY($1::text[])", list(TABLES)))
            assert rls == dict.fromkeys(TABLES, True)
            policies = {r[0] for r in await conn.fetch(
                "SELECT policyname FROM pg_policies WHERE schemaname = 'storage'")}
            assert policies == {"kiebot generations service role"}
        finally:
            await conn.close()
