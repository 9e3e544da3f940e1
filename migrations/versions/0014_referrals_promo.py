"""Referrals, promo codes, the signup bonus's daily cap and the daily free allowance (issue 14).

* referrals: friend → inviter, fixed at the friend's registration; first_charge_id is the
  friend's first purchase (the one that paid both referral bonuses).
* promo_codes / promo_redemptions: admins' codes (credits, total uses, expiry, on/off) and one
  row per (code, user); `used` never passes `max_uses` (CHECK, and a conditional UPDATE).
* daily_counters: per-UTC-day counters with a cap (the signup bonus's SIGNUP_BONUS_DAILY_CAP).
* daily_free_uses: a day's free generations, (user, day, slot) keyed, tied to the generation.

On Postgres every new table gets row-level security with no policy and Supabase's client roles
lose their grants (as 0007 asks of every new table); none of them has a sequence.

Revision ID: 0014_referrals_promo
Revises: 0011_templates
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_referrals_promo"
down_revision = "0011_templates"
branch_labels = None
depends_on = None

TABLES = ("referrals", "promo_codes", "promo_redemptions", "daily_counters", "daily_free_uses")
CLIENT_ROLES = ("anon", "authenticated")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("friend_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_referrals_friend"),
                  primary_key=True, autoincrement=False),
        sa.Column("inviter_id", sa.BigInteger,
                  sa.ForeignKey("users.id", name="fk_referrals_inviter"), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("first_charge_id", sa.String(256)),
        sa.Column("first_paid_at", Timestamp),
        sa.CheckConstraint("friend_id <> inviter_id", name="ck_referrals_not_self"),
        sa.Index("ix_referrals_inviter", "inviter_id"),
    )
    op.create_table(
        "promo_codes",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("max_uses", sa.Integer, nullable=False),
        sa.Column("used", sa.Integer, nullable=False, server_default="0"),
        sa.Column("expires_at", Timestamp),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_by", sa.BigInteger),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.CheckConstraint("credits > 0", name="ck_promo_codes_credits"),
        sa.CheckConstraint("max_uses > 0", name="ck_promo_codes_max_uses"),
        sa.CheckConstraint("used >= 0 AND used <= max_uses", name="ck_promo_codes_used"),
    )
    op.create_table(
        "promo_redemptions",
        sa.Column("code", sa.String(32),
                  sa.ForeignKey("promo_codes.code", name="fk_promo_redemptions_code"),
                  primary_key=True),
        sa.Column("user_id", sa.BigInteger,
                  sa.ForeignKey("users.id", name="fk_promo_redemptions_user"),
                  primary_key=True, autoincrement=False),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Index("ix_promo_redemptions_user", "user_id"),
    )
    op.create_table(
        "daily_counters",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "daily_free_uses",
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_daily_free_user"),
                  primary_key=True, autoincrement=False),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation_id", sa.BigInteger,
                  sa.ForeignKey("generations.id", name="fk_daily_free_generation"), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.UniqueConstraint("generation_id", name="uq_daily_free_generation"),
    )
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    tables = ", ".join(TABLES)
    revokes = [
        f"IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"EXECUTE 'REVOKE ALL ON TABLE {tables} FROM {role}'; END IF"
        for role in CLIENT_ROLES
    ]
    op.execute("DO $kiebot$\nBEGIN\n  " + ";\n  ".join(revokes) + ";\nEND\n$kiebot$")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
