"""model_overrides: admins' runtime changes to the catalog (/models: on/off, ⭐ price).

A new table only, instant on a live database.

Revision ID: 0008_model_overrides
Revises: 0005_updates_inbox
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_model_overrides"
down_revision = "0005_updates_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_overrides",
        sa.Column("model_key", sa.String(64), primary_key=True),
        sa.Column("enabled", sa.Boolean),
        sa.Column("price", sa.Integer),
        sa.Column("updated_by", sa.BigInteger),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price IS NULL OR price >= 0", name="ck_model_overrides_price"),
    )


def downgrade() -> None:
    op.drop_table("model_overrides")
