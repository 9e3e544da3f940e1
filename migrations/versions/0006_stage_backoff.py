"""Per-row backoff for a pipeline stage that keeps failing on one generation.

`generations.stage_attempts` counts the failed attempts of the row's current stage (reset when
the row moves on), `stage_error` keeps the last one's one-line reason for operators, and
`alerted_at` records when the admins were told about the row — once per row, even across
restarts and processes. The "not before" of the next attempt is the existing `next_poll_at`,
which every stage's claim already honours (docs/lifecycle.md).

All three are additions (a NOT NULL column with a default, two nullable ones): instant on a
live database, and old code ignores them.

Revision ID: 0006_stage_backoff
Revises: 0005_updates_inbox
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_stage_backoff"
down_revision = "0005_updates_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("stage_attempts", sa.Integer, nullable=False,
                                           server_default="0"))
    op.add_column("generations", sa.Column("stage_error", sa.Text))
    op.add_column("generations", sa.Column("alerted_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    # SQLite >= 3.35 drops columns in place; none of them carries an index or constraint.
    op.drop_column("generations", "alerted_at")
    op.drop_column("generations", "stage_error")
    op.drop_column("generations", "stage_attempts")
