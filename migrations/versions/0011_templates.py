"""templates: admins' photo templates (/templates in chat: on/off, price, texts, new templates).

A new table only, instant on a live database. A row changes a template of the data file
(bot/templates/data/templates.toml; NULL = as in the file) or, for a key the file lacks, is a whole
template an admin made. On Postgres it is locked down as 0007 asks of every new table: row-level
security with no policy and, where Supabase's client roles exist (`anon`, `authenticated`), their
grants revoked — the public anon key must not price or rewrite templates. The key is text, so
there is no id sequence to revoke. SQLite: the table only.

Revision ID: 0011_templates
Revises: 0010_ledger_reasons
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_templates"
down_revision = "0010_ledger_reasons"
branch_labels = None
depends_on = None

TABLE = "templates"
CLIENT_ROLES = ("anon", "authenticated")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("model_key", sa.String(64)),
        sa.Column("name_en", sa.String(64)),
        sa.Column("name_ru", sa.String(64)),
        sa.Column("description_en", sa.Text),
        sa.Column("description_ru", sa.Text),
        sa.Column("prompt", sa.Text),
        sa.Column("photos", sa.SmallInteger),
        sa.Column("ratio", sa.String(16)),
        sa.Column("price", sa.Integer),
        sa.Column("enabled", sa.Boolean),
        sa.Column("updated_by", sa.BigInteger),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price IS NULL OR price >= 0", name="ck_templates_price"),
        sa.CheckConstraint("photos IS NULL OR photos IN (1, 2)", name="ck_templates_photos"),
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
