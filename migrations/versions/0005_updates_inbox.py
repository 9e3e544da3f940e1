"""updates_inbox (Telegram updates made durable before they are acknowledged) and
credit_ledger.idempotency_key (an admin's balance change keyed by the update that asked for it,
so a replayed update moves no money twice).

Both are additions: a new table and a nullable column with a unique index (NULLs never collide),
instant on a live database.

Revision ID: 0005_updates_inbox
Revises: 0004_prompt_stored_paths
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_updates_inbox"
down_revision = "0004_prompt_stored_paths"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("credit_ledger", sa.Column("idempotency_key", sa.String(128)))
    op.create_index("uq_ledger_idempotency_key", "credit_ledger", ["idempotency_key"], unique=True)
    op.create_table(
        "updates_inbox",
        sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("chat_key", sa.BigInteger),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", Timestamp),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("handled_at", Timestamp),
    )
    where = "handled_at IS NULL"
    op.create_index(
        "ix_inbox_unhandled", "updates_inbox", ["chat_key", "update_id"],
        sqlite_where=sa.text(where), postgresql_where=sa.text(where),
    )
    op.create_index("ix_inbox_handled_at", "updates_inbox", ["handled_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_handled_at", table_name="updates_inbox")
    op.drop_index("ix_inbox_unhandled", table_name="updates_inbox")
    op.drop_table("updates_inbox")
    op.drop_index("uq_ledger_idempotency_key", table_name="credit_ledger")
    # SQLite >= 3.35 drops a column in place once its index is gone.
    op.drop_column("credit_ledger", "idempotency_key")
