"""Initial schema: users, generations, credit_ledger, payments.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-24
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonType = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)
NOW = sa.func.current_timestamp()
STATUS_CHECK = (
    "status IN ('queued', 'generating', 'submit_unknown', 'storing', 'succeeded', 'failed')"
)
REASON_CHECK = (
    "reason IN ('signup_bonus', 'purchase', 'spend', 'refund', 'admin_adjust', 'purchase_refund')"
)


def _partial_unique(name: str, columns: list[str], where: str) -> None:
    op.create_index(
        name, "credit_ledger", columns, unique=True,
        sqlite_where=sa.text(where), postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("username", sa.String(64)),
        sa.Column("first_name", sa.String(256)),
        sa.Column("last_name", sa.String(256)),
        sa.Column("language", sa.String(16)),
        sa.Column("balance", sa.Integer, nullable=False, server_default="0"),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", Timestamp, nullable=False, server_default=NOW),
        sa.Column("last_seen_at", Timestamp, nullable=False, server_default=NOW),
        sa.CheckConstraint("balance >= 0", name="ck_users_balance_nonnegative"),
    )
    op.create_table(
        "generations",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_generations_user"), nullable=False),
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="queued"),
        sa.Column("task_id", sa.String(128)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model_key", sa.String(64), nullable=False),
        sa.Column("result_urls", JsonType),
        sa.Column("preview_url", sa.Text),
        sa.Column("options", JsonType),
        sa.Column("error", sa.Text),
        sa.Column("created_at", Timestamp, nullable=False, server_default=NOW),
        sa.Column("cost", sa.Integer, nullable=False, server_default="0"),
        sa.Column("request_key", sa.String(128)),
        sa.Column("kie_state", sa.String(32)),
        sa.Column("fail_code", sa.String(64)),
        sa.Column("poll_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_poll_at", Timestamp),
        sa.Column("deadline_at", Timestamp),
        sa.Column("submitted_at", Timestamp),
        sa.Column("callback_received_at", Timestamp),
        sa.Column("completed_at", Timestamp),
        sa.Column("delivered_at", Timestamp),
        sa.Column("progress_message_id", sa.BigInteger),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", Timestamp),
        sa.Column("updated_at", Timestamp, nullable=False, server_default=NOW),
        sa.CheckConstraint(STATUS_CHECK, name="ck_generations_status"),
        sa.CheckConstraint("cost >= 0", name="ck_generations_cost_nonnegative"),
        sa.UniqueConstraint("task_id", name="uq_generations_task_id"),
        sa.UniqueConstraint("user_id", "request_key", name="uq_generations_user_request"),
    )
    op.create_index("ix_generations_status_next_poll", "generations", ["status", "next_poll_at"])
    op.create_index("ix_generations_user_created", "generations", ["user_id", "created_at"])

    op.create_table(
        "credit_ledger",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_ledger_user"), nullable=False),
        sa.Column("delta", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("generation_id", sa.BigInteger, sa.ForeignKey("generations.id", name="fk_ledger_generation")),
        sa.Column("payment_charge_id", sa.String(256)),
        sa.Column("admin_id", sa.BigInteger),
        sa.Column("note", sa.Text),
        sa.Column("created_at", Timestamp, nullable=False, server_default=NOW),
        sa.CheckConstraint(REASON_CHECK, name="ck_ledger_reason"),
    )
    op.create_index("ix_ledger_user_created", "credit_ledger", ["user_id", "created_at"])
    _partial_unique("uq_ledger_signup_once", ["user_id"], "reason = 'signup_bonus'")
    _partial_unique("uq_ledger_generation_reason", ["generation_id", "reason"], "reason IN ('spend', 'refund')")
    _partial_unique("uq_ledger_charge_reason", ["payment_charge_id", "reason"], "reason IN ('purchase', 'purchase_refund')")

    op.create_table(
        "payments",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("telegram_payment_charge_id", sa.String(256), nullable=False),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_payments_user"), nullable=False),
        sa.Column("stars", sa.Integer, nullable=False),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text),
        sa.Column("created_at", Timestamp, nullable=False, server_default=NOW),
        sa.Column("refunded_at", Timestamp),
        sa.UniqueConstraint("telegram_payment_charge_id", name="uq_payments_charge_id"),
    )
    op.create_index("ix_payments_user_created", "payments", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("payments")
    op.drop_table("credit_ledger")
    op.drop_table("generations")
    op.drop_table("users")
