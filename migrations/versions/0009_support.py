"""Support and bans: users.banned, support_messages and the admins' copies of them.

* users.banned (false by default): an admin's /ban; a banned user gets one polite line per update.
* support_messages: each /paysupport message (who sent it, its text, when).
* support_admin_messages: the bot's messages in admins' chats tied to a support message, keyed
  by (admin chat, message id): kind 'forward' for the copy each admin got (an admin's Telegram
  reply to it finds the user), kind 'reply' for the admin's reply that was passed on — so a
  replayed reply update finds its key taken and delivers nothing twice.

On Postgres both tables get row-level security with no policy and Supabase's client roles lose
their grants (as 0007 asks of every new table), sequences included. SQLite: the DDL only.

Revision ID: 0009_support
Revises: 0008_model_overrides
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_support"
down_revision = "0008_model_overrides"
branch_labels = None
depends_on = None

TABLES = ("support_messages", "support_admin_messages")
CLIENT_ROLES = ("anon", "authenticated")
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("users", sa.Column("banned", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "support_messages",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_support_user"),
                  nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_support_user_created", "user_id", "created_at"),
    )
    op.create_table(
        "support_admin_messages",
        sa.Column("admin_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("message_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("support_id", sa.BigInteger,
                  sa.ForeignKey("support_messages.id", name="fk_support_admin_support"),
                  nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('forward', 'reply')", name="ck_support_admin_kind"),
    )
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    tables = ", ".join(TABLES)
    revokes = [
        f"IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"EXECUTE 'REVOKE ALL ON TABLE {tables} FROM {role}'; "
        f"EXECUTE 'REVOKE ALL ON SEQUENCE support_messages_id_seq FROM {role}'; END IF"
        for role in CLIENT_ROLES
    ]
    op.execute("DO $kiebot$\nBEGIN\n  " + ";\n  ".join(revokes) + ";\nEND\n$kiebot$")


def downgrade() -> None:
    op.drop_table("support_admin_messages")
    op.drop_table("support_messages")
    # SQLite >= 3.35 drops the column in place (a batch copy of `users` would trip the foreign
    # keys pointing at it); it carries no index or constraint.
    op.drop_column("users", "banned")
