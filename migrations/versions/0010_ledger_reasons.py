"""Ledger reasons for issue 14's money: referral bonuses and shares, promo codes, the prompt helper.

* referral_bonus: the bonus an inviter and a friend each get on the friend's first purchase.
* referral_share: the inviter's share of a friend's purchase.
* promo: credits from a promo code.
* assist / assist_refund: a priced "✨ Improve" of a prompt, and its refund when the chat fails.

Only the CHECK constraint changes. Postgres alters it in place. SQLite cannot alter a CHECK, so the
table is rebuilt: a copy with the new constraint, the rows, then the indexes as they were (the
partial unique indexes keep their WHERE clauses, which Alembic's batch mode would not reflect on
SQLite). Nothing references credit_ledger, so dropping the old table trips no foreign key.

Revision ID: 0010_ledger_reasons
Revises: 0009_support
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0010_ledger_reasons"
down_revision = "0009_support"
branch_labels = None
depends_on = None

OLD = ("signup_bonus", "purchase", "spend", "refund", "admin_adjust", "purchase_refund")
NEW = OLD + ("referral_bonus", "referral_share", "promo", "assist", "assist_refund")

SQLITE_TABLE = """CREATE TABLE credit_ledger_new (
    id INTEGER NOT NULL,
    user_id BIGINT NOT NULL,
    delta INTEGER NOT NULL,
    reason VARCHAR(20) NOT NULL,
    generation_id BIGINT,
    payment_charge_id VARCHAR(256),
    admin_id BIGINT,
    note TEXT,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
    idempotency_key VARCHAR(128),
    PRIMARY KEY (id),
    CONSTRAINT ck_ledger_reason CHECK ({check}),
    CONSTRAINT fk_ledger_user FOREIGN KEY(user_id) REFERENCES users (id),
    CONSTRAINT fk_ledger_generation FOREIGN KEY(generation_id) REFERENCES generations (id)
)"""
COLUMNS = ("id, user_id, delta, reason, generation_id, payment_charge_id, admin_id, note, "
           "created_at, idempotency_key")
SQLITE_INDEXES = (
    "CREATE INDEX ix_ledger_user_created ON credit_ledger (user_id, created_at)",
    "CREATE UNIQUE INDEX uq_ledger_signup_once ON credit_ledger (user_id) "
    "WHERE reason = 'signup_bonus'",
    "CREATE UNIQUE INDEX uq_ledger_generation_reason ON credit_ledger (generation_id, reason) "
    "WHERE reason IN ('spend', 'refund')",
    "CREATE UNIQUE INDEX uq_ledger_charge_reason ON credit_ledger (payment_charge_id, reason) "
    "WHERE reason IN ('purchase', 'purchase_refund')",
    "CREATE UNIQUE INDEX uq_ledger_idempotency_key ON credit_ledger (idempotency_key)",
)


def _check(reasons: tuple[str, ...]) -> str:
    return "reason IN (" + ", ".join(f"'{r}'" for r in reasons) + ")"


def _set_reasons(reasons: tuple[str, ...]) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE credit_ledger DROP CONSTRAINT ck_ledger_reason")
        op.execute(f"ALTER TABLE credit_ledger ADD CONSTRAINT ck_ledger_reason CHECK ({_check(reasons)})")
        return
    op.execute(SQLITE_TABLE.format(check=_check(reasons)))
    op.execute(f"INSERT INTO credit_ledger_new ({COLUMNS}) SELECT {COLUMNS} FROM credit_ledger")
    op.execute("DROP TABLE credit_ledger")
    op.execute("ALTER TABLE credit_ledger_new RENAME TO credit_ledger")
    for statement in SQLITE_INDEXES:
        op.execute(statement)


def upgrade() -> None:
    _set_reasons(NEW)


def downgrade() -> None:
    # Rows with the new reasons cannot be kept under the old constraint: refuse rather than lose
    # money records (the CHECK fails on copy / on ADD CONSTRAINT, and the transaction rolls back).
    _set_reasons(OLD)
