"""model_overrides: admins' runtime changes to the catalog (/models: on/off, ⭐ price).

A new table only, instant on a live database. On Postgres it is locked down as 0007 asks of every
new table: row-level security with no policy, and where Supabase's client roles exist (`anon`,
`authenticated`) their grants on it revoked — the public anon key must not switch models off or
set prices. The key is text, so there is no id sequence to revoke. SQLite: the table only.

Revision ID: 0008_model_overrides
Revises: 0007_supabase_rls
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_model_overrides"
down_revision = "0007_supabase_rls"
branch_labels = None
depends_on = None

TABLE = "model_overrides"
CLIENT_ROLES = ("anon", "authenticated")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("model_key", sa.String(64), primary_key=True),
        sa.Column("enabled", sa.Boolean),
        sa.Column("price", sa.Integer),
        sa.Column("updated_by", sa.BigInteger),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price IS NULL OR price >= 0", name="ck_model_overrides_price"),
    )
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    revokes = [
        f"IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"EXECUTE 'REVOKE ALL ON TABLE {TABLE} FROM {role}'; END IF"
        for role in CLIENT_ROLES
    ]
    op.execute("DO $kiebot$\nBEGIN\n  " + ";\n  ".join(revokes) + ";\nEND\n$kiebot$")


def downgrade() -> None:
    op.drop_table(TABLE)
