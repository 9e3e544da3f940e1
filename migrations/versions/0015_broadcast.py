"""Broadcasts (issue 14 item 7) and support's replay key (item 8).

* broadcasts: an admin's /broadcast — the message (text or a photo's file_id with caption,
  entities, an optional URL button), the segment, its state, the admin's progress card and the
  sending worker's lease.
* broadcast_recipients: one row per recipient, materialised when the admin confirms, keyed by
  (broadcast, user), with its state (pending, sending, sent, blocked, failed, unknown): the
  worker claims rows pending → sending before it sends, so no row is sent twice, and a row left
  in "sending" by a dead process becomes "unknown" and is not resent (bot/services/broadcast.py).
* support_messages.chat_id / message_id with a unique index: a /paysupport message is keyed by
  the user's message, so a replayed update reaches the admins once.

On Postgres the new tables get row-level security with no policy and Supabase's client roles lose
their grants (as 0007 asks of every new table), sequences included. SQLite: the DDL only.

Revision ID: 0015_broadcast
Revises: 0014_referrals_promo
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0015_broadcast"
down_revision = "0014_referrals_promo"
branch_labels = None
depends_on = None

TABLES = ("broadcasts", "broadcast_recipients")
CLIENT_ROLES = ("anon", "authenticated")
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonType = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("support_messages", sa.Column("chat_id", sa.BigInteger))
    op.add_column("support_messages", sa.Column("message_id", sa.BigInteger))
    op.create_index("uq_support_source", "support_messages", ["chat_id", "message_id"],
                    unique=True)
    op.create_table(
        "broadcasts",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("admin_id", sa.BigInteger, nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("entities", JsonType),
        sa.Column("photo", sa.String(256)),
        sa.Column("button_text", sa.String(64)),
        sa.Column("button_url", sa.String(512)),
        sa.Column("segment", sa.String(16), nullable=False),
        sa.Column("segment_arg", sa.String(16)),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("card_message_id", sa.BigInteger),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("started_at", Timestamp),
        sa.Column("finished_at", Timestamp),
        sa.Column("reported_at", Timestamp),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", Timestamp),
        sa.CheckConstraint("kind IN ('text', 'photo')", name="ck_broadcasts_kind"),
        sa.CheckConstraint("segment IN ('all', 'active', 'paying', 'balance', 'lang')",
                           name="ck_broadcasts_segment"),
        sa.CheckConstraint("state IN ('draft', 'running', 'paused', 'cancelled', 'done')",
                           name="ck_broadcasts_state"),
        sa.Index("ix_broadcasts_state", "state"),
    )
    op.create_table(
        "broadcast_recipients",
        sa.Column("broadcast_id", sa.BigInteger,
                  sa.ForeignKey("broadcasts.id", name="fk_broadcast_recipients_broadcast"),
                  primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
        sa.Column("error", sa.String(64)),
        sa.Column("updated_at", Timestamp),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'blocked', 'failed', 'unknown')",
            name="ck_broadcast_recipients_state"),
        sa.Index("ix_broadcast_recipients_state", "broadcast_id", "state", "user_id"),
    )
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    tables = ", ".join(TABLES)
    revokes = [
        f"IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"EXECUTE 'REVOKE ALL ON TABLE {tables} FROM {role}'; "
        f"EXECUTE 'REVOKE ALL ON SEQUENCE broadcasts_id_seq FROM {role}'; END IF"
        for role in CLIENT_ROLES
    ]
    op.execute("DO $kiebot$\nBEGIN\n  " + ";\n  ".join(revokes) + ";\nEND\n$kiebot$")


def downgrade() -> None:
    op.drop_table("broadcast_recipients")
    op.drop_table("broadcasts")
    op.drop_index("uq_support_source", table_name="support_messages")
    op.drop_column("support_messages", "message_id")
    op.drop_column("support_messages", "chat_id")
