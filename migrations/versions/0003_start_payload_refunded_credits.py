"""users.start_payload (the first deep-link payload, kept for referrals) and
payments.refunded_credits (what a purchase refund actually took back, which may be less than the
pack when part of it was already spent).

Both columns are nullable and added in place, so the upgrade is instant on a live database.

Revision ID: 0003_start_payload_refunded
Revises: 0002_supabase_bucket
Create Date: 2026-11-24
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_start_payload_refunded"
down_revision = "0002_supabase_bucket"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("start_payload", sa.String(64)))
    op.add_column("payments", sa.Column("refunded_credits", sa.Integer))


def downgrade() -> None:
    # SQLite >= 3.35 drops columns in place; neither column carries an index or constraint.
    op.drop_column("payments", "refunded_credits")
    op.drop_column("users", "start_payload")
