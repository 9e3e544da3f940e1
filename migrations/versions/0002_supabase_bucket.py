"""Supabase storage: the public `generations` bucket and the origin's access policies.

Only acts on Postgres, and there only when the `storage` schema exists (i.e. on Supabase); the
check runs inside the database (a DO block) so the same SQL works in `kiebot migrate --sql`
output pasted into Supabase's SQL editor. SQLite and plain Postgres: nothing happens.

Revision ID: 0002_supabase_bucket
Revises: 0001_initial
Create Date: 2026-11-24
"""
from __future__ import annotations

from alembic import op

revision = "0002_supabase_bucket"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

BUCKET = "generations"

# (policy name, CREATE POLICY body after "ON storage.objects")
POLICIES = [
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
    ("kiebot generations service role",
     f"FOR ALL TO service_role USING (bucket_id = '{BUCKET}') WITH CHECK (bucket_id = '{BUCKET}')"),
]


def _is_postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _quote(text: str) -> str:
    return text.replace("'", "''")


def upgrade() -> None:
    if not _is_postgres():
        return
    statements = [
        f"INSERT INTO storage.buckets (id, name, public) VALUES ('{BUCKET}', '{BUCKET}', true) "
        "ON CONFLICT (id) DO NOTHING"
    ]
    for name, body in POLICIES:
        create = _quote('CREATE POLICY "' + name + '" ON storage.objects ' + body)
        statements.append(
            "IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'storage' "
            f"AND tablename = 'objects' AND policyname = '{_quote(name)}') THEN "
            f"EXECUTE '{create}'; END IF"
        )
    _guarded(statements)


def downgrade() -> None:
    if not _is_postgres():
        return
    statements = [f'EXECUTE \'DROP POLICY IF EXISTS "{name}" ON storage.objects\'' for name, _ in POLICIES]
    # Keep the bucket if it still holds files: deleting it would orphan users' results.
    statements.append(
        f"DELETE FROM storage.buckets WHERE id = '{BUCKET}' "
        f"AND NOT EXISTS (SELECT 1 FROM storage.objects WHERE bucket_id = '{BUCKET}')"
    )
    _guarded(statements)


def _guarded(statements: list[str]) -> None:
    body = ";\n    ".join(statements)
    op.execute(
        "DO $kiebot$\nBEGIN\n"
        "  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'storage')\n"
        "     AND to_regclass('storage.buckets') IS NOT NULL\n"
        "     AND to_regclass('storage.objects') IS NOT NULL THEN\n"
        f"    {body};\n"
        "  END IF;\nEND\n$kiebot$"
    )
