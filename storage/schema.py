"""SQLAlchemy Core tables. The migrations in migrations/versions are the source of truth for
DDL; this metadata must describe the same schema (tests compare them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from storage.models import GenerationStatus

metadata = sa.MetaData()

# Integer on SQLite so the column is a rowid alias and autoincrements; BIGINT elsewhere.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonType = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)

STATUSES = tuple(status.value for status in GenerationStatus)
REASONS = ("signup_bonus", "purchase", "spend", "refund", "admin_adjust", "purchase_refund",
           "referral_bonus", "referral_share", "promo", "assist", "assist_refund")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("username", sa.String(64)),
    sa.Column("first_name", sa.String(256)),
    sa.Column("last_name", sa.String(256)),
    sa.Column("language", sa.String(16)),
    sa.Column("balance", sa.Integer, nullable=False, server_default="0"),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("last_seen_at", Timestamp, nullable=False, server_default=sa.func.current_timestamp()),
    # The first /start deep-link payload (t.me/<bot>?start=<payload>), for referrals.
    sa.Column("start_payload", sa.String(64)),
    # An admin's /ban: the user gets one polite line per update and nothing else.
    sa.Column("banned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("balance >= 0", name="ck_users_balance_nonnegative"),
)

generations = sa.Table(
    "generations",
    metadata,
    sa.Column("id", IdType, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_generations_user"), nullable=False),
    sa.Column("chat_id", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default=GenerationStatus.queued.value),
    sa.Column("task_id", sa.String(128)),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("model_key", sa.String(64), nullable=False),
    sa.Column("result_urls", JsonType),
    sa.Column("preview_url", sa.Text),
    sa.Column("options", JsonType),
    sa.Column("prompt", sa.Text, nullable=False, server_default=""),
    # Object paths of our stored copies (MediaStore keys), in result order; [] until stored.
    sa.Column("stored_paths", JsonType, nullable=False, server_default=sa.text("'[]'")),
    sa.Column("error", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.current_timestamp()),
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
    sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.current_timestamp()),
    # Failed attempts of the row's current stage (reset when it moves on), the last failure's
    # one-line reason, and when the admins were told about the row (once): bot/services/
    # pipeline/failures.py. The next attempt waits for next_poll_at like every deferral.
    sa.Column("stage_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stage_error", sa.Text),
    sa.Column("alerted_at", Timestamp),
    sa.CheckConstraint(_in("status", STATUSES), name="ck_generations_status"),
    sa.CheckConstraint("cost >= 0", name="ck_generations_cost_nonnegative"),
    sa.UniqueConstraint("task_id", name="uq_generations_task_id"),
    sa.UniqueConstraint("user_id", "request_key", name="uq_generations_user_request"),
    sa.Index("ix_generations_status_next_poll", "status", "next_poll_at"),
    sa.Index("ix_generations_user_created", "user_id", "created_at"),
)

credit_ledger = sa.Table(
    "credit_ledger",
    metadata,
    sa.Column("id", IdType, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_ledger_user"), nullable=False),
    sa.Column("delta", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("generation_id", sa.BigInteger, sa.ForeignKey("generations.id", name="fk_ledger_generation")),
    sa.Column("payment_charge_id", sa.String(256)),
    sa.Column("admin_id", sa.BigInteger),
    sa.Column("note", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.current_timestamp()),
    # What caused a manual row (e.g. "admin:<update_id>"): a replayed update finds it taken.
    sa.Column("idempotency_key", sa.String(128)),
    sa.CheckConstraint(_in("reason", REASONS), name="ck_ledger_reason"),
    sa.Index("ix_ledger_user_created", "user_id", "created_at"),
)

# Exactly-once money effects are enforced by the database, not by application checks:
# partial unique indexes work identically on SQLite (>= 3.8) and Postgres.
_SIGNUP_WHERE = sa.text("reason = 'signup_bonus'")
_GEN_WHERE = sa.text("reason IN ('spend', 'refund')")
_CHARGE_WHERE = sa.text("reason IN ('purchase', 'purchase_refund')")
sa.Index(
    "uq_ledger_signup_once", credit_ledger.c.user_id, unique=True,
    sqlite_where=_SIGNUP_WHERE, postgresql_where=_SIGNUP_WHERE,
)
sa.Index(
    "uq_ledger_generation_reason", credit_ledger.c.generation_id, credit_ledger.c.reason, unique=True,
    sqlite_where=_GEN_WHERE, postgresql_where=_GEN_WHERE,
)
sa.Index(
    "uq_ledger_charge_reason", credit_ledger.c.payment_charge_id, credit_ledger.c.reason, unique=True,
    sqlite_where=_CHARGE_WHERE, postgresql_where=_CHARGE_WHERE,
)

# NULLs are distinct in a unique index on both SQLite and Postgres: only keyed rows collide.
sa.Index("uq_ledger_idempotency_key", credit_ledger.c.idempotency_key, unique=True)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", IdType, primary_key=True, autoincrement=True),
    sa.Column("telegram_payment_charge_id", sa.String(256), nullable=False),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_payments_user"), nullable=False),
    sa.Column("stars", sa.Integer, nullable=False),
    sa.Column("credits", sa.Integer, nullable=False),
    sa.Column("payload", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("refunded_at", Timestamp),
    # Credits the refund actually debited: min(credits, balance at refund time).
    sa.Column("refunded_credits", sa.Integer),
    sa.UniqueConstraint("telegram_payment_charge_id", name="uq_payments_charge_id"),
    sa.Index("ix_payments_user_created", "user_id", "created_at"),
)

# Telegram updates, written before they are acknowledged (bot/inbox.py) and drained through the
# dispatcher. update_id is the key, so Telegram's redelivery of an update is a no-op insert;
# handled rows stay a while (INBOX_KEEP_HOURS) for exactly that dedupe, then are pruned.
updates_inbox = sa.Table(
    "updates_inbox",
    metadata,
    sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
    # The chat (or, without one, the user) the update belongs to: one chat's updates are
    # handled one at a time, in update_id order. NULL: no order to keep.
    sa.Column("chat_key", sa.BigInteger),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", Timestamp),
    # Claims so far: an update that kills its process every time is given up after a few.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("handled_at", Timestamp),
)
_UNHANDLED = sa.text("handled_at IS NULL")
sa.Index(
    "ix_inbox_unhandled", updates_inbox.c.chat_key, updates_inbox.c.update_id,
    sqlite_where=_UNHANDLED, postgresql_where=_UNHANDLED,
)
sa.Index("ix_inbox_handled_at", updates_inbox.c.handled_at)

# Admins' runtime changes to the model catalog (/models in chat): on/off and a ⭐ price at the
# model's default options. NULL = no change (the data file and settings decide). Keyed by the
# catalog key; a row whose model left the data files is ignored.
model_overrides = sa.Table(
    "model_overrides",
    metadata,
    sa.Column("model_key", sa.String(64), primary_key=True),
    sa.Column("enabled", sa.Boolean),
    sa.Column("price", sa.Integer),
    sa.Column("updated_by", sa.BigInteger),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.CheckConstraint("price IS NULL OR price >= 0", name="ck_model_overrides_price"),
)

# /paysupport messages, and the bot's messages in admins' chats tied to them, keyed by (admin
# chat, message id): 'forward' is the copy an admin got (a Telegram reply to it finds the user),
# 'reply' an admin's reply passed on (its key taken, a replayed update delivers nothing twice).
support_messages = sa.Table(
    "support_messages",
    metadata,
    sa.Column("id", IdType, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_support_user"), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_support_user_created", "user_id", "created_at"),
)

support_admin_messages = sa.Table(
    "support_admin_messages",
    metadata,
    sa.Column("admin_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("message_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("support_id", sa.BigInteger,
              sa.ForeignKey("support_messages.id", name="fk_support_admin_support"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("text", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.CheckConstraint("kind IN ('forward', 'reply')", name="ck_support_admin_kind"),
)


# photo templates (issue 14)
# Admins' photo templates (/templates in chat): a row either changes a template of the data file
# (bot/templates/data/templates.toml; NULL = as in the file) or, for a key the file lacks, is a
# whole template an admin made (model and prompt set). Keyed by the template key.
templates = sa.Table(
    "templates",
    metadata,
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
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.CheckConstraint("price IS NULL OR price >= 0", name="ck_templates_price"),
    sa.CheckConstraint("photos IS NULL OR photos IN (1, 2)", name="ck_templates_photos"),
)
# referrals, promo codes, daily free (issue 14)
# Who invited whom, fixed when the friend registers (the friend's first deep link, ref_<code>);
# first_charge_id is the friend's first purchase, the one that paid both bonuses (set once: the
# gate for the bonuses, next to their keyed ledger rows).
referrals = sa.Table(
    "referrals",
    metadata,
    sa.Column("friend_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_referrals_friend"),
              primary_key=True, autoincrement=False),
    sa.Column("inviter_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_referrals_inviter"),
              nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("first_charge_id", sa.String(256)),
    sa.Column("first_paid_at", Timestamp),
    sa.CheckConstraint("friend_id <> inviter_id", name="ck_referrals_not_self"),
    sa.Index("ix_referrals_inviter", "inviter_id"),
)

# Admins' promo codes. `used` is moved by one conditional UPDATE (used < max_uses, active, not
# expired), and the CHECK backs it, so concurrent redemptions can never exceed max_uses.
promo_codes = sa.Table(
    "promo_codes",
    metadata,
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

# One row per (code, user): the primary key makes "once per user" the database's rule.
promo_redemptions = sa.Table(
    "promo_redemptions",
    metadata,
    sa.Column("code", sa.String(32), sa.ForeignKey("promo_codes.code", name="fk_promo_redemptions_code"),
              primary_key=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_promo_redemptions_user"),
              primary_key=True, autoincrement=False),
    sa.Column("credits", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index("ix_promo_redemptions_user", "user_id"),
)

# Per-UTC-day counters with a cap enforced by one conditional UPDATE (the signup bonus's daily
# cap: name 'signup_bonus'). day is 'YYYY-MM-DD'.
daily_counters = sa.Table(
    "daily_counters",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False, server_default="0"),
)

# The daily free allowance: a use is a row keyed (user, UTC day, slot), slot < the allowance,
# tied to the generation it paid for; a failed or cancelled generation deletes its row.
daily_free_uses = sa.Table(
    "daily_free_uses",
    metadata,
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id", name="fk_daily_free_user"),
              primary_key=True, autoincrement=False),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation_id", sa.BigInteger,
              sa.ForeignKey("generations.id", name="fk_daily_free_generation"), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("generation_id", name="uq_daily_free_generation"),
)
# broadcast and support (issue 14)
# A /paysupport message is keyed by the user's own message (chat, message id): a replayed
# update finds the key taken and forwards nothing to the admins again. NULLs are distinct, so
# rows stored before the key existed never collide. (Appended here to keep support's table
# definition above untouched by this branch.)
support_messages.append_column(sa.Column("chat_id", sa.BigInteger))
support_messages.append_column(sa.Column("message_id", sa.BigInteger))
sa.Index("uq_support_source", support_messages.c.chat_id, support_messages.c.message_id,
         unique=True)

BROADCAST_STATES = ("draft", "running", "paused", "cancelled", "done")
BROADCAST_SEGMENTS = ("all", "active", "paying", "balance", "lang")
# pending → sending (claimed right before the send) → sent | blocked | failed; a row found in
# "sending" when another process takes the broadcast over becomes "unknown" and is never
# resent: the message may have reached the chat before the process died.
RECIPIENT_STATES = ("pending", "sending", "sent", "blocked", "failed", "unknown")

# An admin's /broadcast: what to send (text, or a photo by file_id with a caption, Telegram's
# entities, an optional URL button), to whom (segment), and how far it got. A draft has no
# recipients; confirming it materialises them (broadcast_recipients) in the same transaction.
# The worker sending it holds a lease (lease_owner, lease_until) so two processes never both
# send; reported_at marks the admin's final report as sent.
broadcasts = sa.Table(
    "broadcasts",
    metadata,
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
    sa.CheckConstraint(_in("segment", BROADCAST_SEGMENTS), name="ck_broadcasts_segment"),
    sa.CheckConstraint(_in("state", BROADCAST_STATES), name="ck_broadcasts_state"),
    sa.Index("ix_broadcasts_state", "state"),
)

broadcast_recipients = sa.Table(
    "broadcast_recipients",
    metadata,
    sa.Column("broadcast_id", sa.BigInteger,
              sa.ForeignKey("broadcasts.id", name="fk_broadcast_recipients_broadcast"),
              primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
    sa.Column("error", sa.String(64)),
    sa.Column("updated_at", Timestamp),
    sa.CheckConstraint(_in("state", RECIPIENT_STATES), name="ck_broadcast_recipients_state"),
    sa.Index("ix_broadcast_recipients_state", "broadcast_id", "state", "user_id"),
)
