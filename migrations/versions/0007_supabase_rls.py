"""Supabase locked down: row-level security on the bot's tables, and no public listing of the bucket.

Supabase serves every table in `public` through its Data API to anyone holding the project's
anon key (which Supabase treats as public), with the default grants it gives `anon` and
`authenticated`. So, on Postgres:

* ROW LEVEL SECURITY is enabled on users, generations, credit_ledger, payments and updates_inbox,
  with no policy at all: `anon` and `authenticated` see no row and can change none. The bot's
  own connection is unaffected — it connects as the tables' owner (Supabase's `postgres`) or as
  `service_role`, and owners and BYPASSRLS roles are not subject to RLS (not FORCEd on purpose).
  Every later migration that creates a table must enable RLS on it too.
* Where the roles exist (Supabase), the grants `anon` and `authenticated` hold on those tables
  (and on their id sequences) are revoked as well, so the Data API answers "permission denied"
  rather than an empty list. Other tables in the schema are left alone.
* Where the `storage` schema exists (as in 0002): the "public read" policy goes — a public
  bucket serves its public URLs without any SELECT policy; that policy only let anyone *list*
  every user's files — and so do the three `auth.uid()` policies, which could never match
  (objects live under Telegram user ids, not Supabase auth users). The service-role policy stays.

SQLite: nothing happens. The same SQL works in `kiebot migrate --sql` output (the storage and
role parts check inside the database, in DO blocks).

Downgrade disables RLS and puts 0002's policies back; the revoked grants are not given back
(they were Supabase's defaults, never the bot's).

Revision ID: 0007_supabase_rls
Revises: 0006_stage_backoff
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0007_supabase_rls"
# H2's 0006 lands beside this one: chained at merge (this revision then revises 0006).
down_revision = "0006_stage_backoff"
branch_labels = None
depends_on = None

TABLES = ("users", "generations", "credit_ledger", "payments", "updates_inbox")
CLIENT_ROLES = ("anon", "authenticated")
BUCKET = "generations"

# 0002's policies this migration drops (name, CREATE POLICY body after "ON storage.objects"),
# kept here so downgrade can put them back exactly.
DROPPED_POLICIES = [
    ("kiebot generations public read",
     f"FOR SELECT TO public USING (bucket_id = '{BUCKET}')"),
    ("kiebot generations owner insert",
     f"FOR INSERT TO authenticated WITH CHECK (bucket_id = '{BUCKET}' "
     "AND (storage.foldername(name))[1] = auth.uid()::text)"),
    ("kiebot generations owner update",
     f"FOR UPDATE TO authenticated USING (bucket_id = '{BUCKET}' "
     "AND (storage.foldername(name))[1] = auth.uid()::text) "
     f"WITH CHECK (bucket_id = '{BUCKET}' AND (storage.foldername(name))[1] = auth.uid()::text)"),
    ("kiebot generations owner delete",
     f"FOR DELETE TO authenticated USING (bucket_id = '{BUCKET}' "
     "AND (storage.foldername(name))[1] = auth.uid()::text)"),
]


def _is_postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _quote(text: str) -> str:
    return text.replace("'", "''")


def upgrade() -> None:
    if not _is_postgres():
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    tables = ", ".join(TABLES)
    names = ", ".join(f"'{table}'" for table in TABLES)
    revokes = []
    for role in CLIENT_ROLES:
        revokes.append(
            f"IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN\n"
            f"    EXECUTE 'REVOKE ALL ON TABLE {tables} FROM {role}';\n"
            # The id sequences of these tables (nextval would let the key burn ids).
            "    FOR seq IN SELECT s.oid::regclass::text FROM pg_class s\n"
            "        JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass\n"
            "         AND d.refclassid = 'pg_class'::regclass\n"
            "        JOIN pg_class t ON t.oid = d.refobjid\n"
            f"        WHERE s.relkind = 'S' AND t.relname IN ({names})\n"
            "          AND t.relnamespace = current_schema()::regnamespace LOOP\n"
            f"      EXECUTE 'REVOKE ALL ON SEQUENCE ' || seq || ' FROM {role}';\n"
            "    END LOOP;\n"
            "  END IF"
        )
    op.execute("DO $kiebot$\nDECLARE seq text;\nBEGIN\n  " + ";\n  ".join(revokes)
               + ";\nEND\n$kiebot$")
    _in_storage([
        f'EXECUTE \'DROP POLICY IF EXISTS "{name}" ON storage.objects\''
        for name, _ in DROPPED_POLICIES
    ])


def downgrade() -> None:
    if not _is_postgres():
        return
    statements = []
    for name, body in DROPPED_POLICIES:
        create = _quote('CREATE POLICY "' + name + '" ON storage.objects ' + body)
        statements.append(
            "IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'storage' "
            f"AND tablename = 'objects' AND policyname = '{_quote(name)}') THEN "
            f"EXECUTE '{create}'; END IF"
        )
    _in_storage(statements)
    for table in reversed(TABLES):
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def _in_storage(statements: list[str]) -> None:
    """Run `statements` (PL/pgSQL) only where Supabase's storage tables exist (as 0002 does)."""
    body = ";\n    ".join(statements)
    op.execute(
        "DO $kiebot$\nBEGIN\n"
        "  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'storage')\n"
        "     AND to_regclass('storage.buckets') IS NOT NULL\n"
        "     AND to_regclass('storage.objects') IS NOT NULL THEN\n"
        f"    {body};\n"
        "  END IF;\nEND\n$kiebot$"
    )
