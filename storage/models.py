"""Plain frozen records returned by the repository (no ORM objects escape storage)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class GenerationStatus(enum.StrEnum):
    """Where a generation is in its lifecycle (docs/lifecycle.md). The values are what the
    `generations.status` column holds; a StrEnum compares equal to them, so callers may pass
    plain strings."""

    queued = "queued"
    generating = "generating"
    submit_unknown = "submit_unknown"
    storing = "storing"
    succeeded = "succeeded"
    failed = "failed"


FINAL_STATUSES = frozenset({GenerationStatus.succeeded, GenerationStatus.failed})
NON_FINAL_STATUSES = frozenset(GenerationStatus) - FINAL_STATUSES

# to_status -> statuses it may be reached from. Anything not listed is refused by transition().
ALLOWED_MOVES: dict[GenerationStatus, frozenset[GenerationStatus]] = {
    GenerationStatus.generating: frozenset({GenerationStatus.queued, GenerationStatus.submit_unknown}),
    GenerationStatus.submit_unknown: frozenset({GenerationStatus.queued}),
    GenerationStatus.storing: frozenset({GenerationStatus.generating, GenerationStatus.submit_unknown}),
    GenerationStatus.succeeded: frozenset({GenerationStatus.storing}),
    GenerationStatus.failed: NON_FINAL_STATUSES,
}


class Stage(enum.StrEnum):
    """A background pass of the pipeline; Repository.claim(stage) leases the rows it works on:
    submit (queued), poll (generating/submit_unknown), store (storing), deliver (final and not
    yet delivered), expire (non-final past the deadline)."""

    submit = "submit"
    poll = "poll"
    store = "store"
    deliver = "deliver"
    expire = "expire"


LEDGER_REASONS = (
    "signup_bonus",
    "purchase",
    "spend",
    "refund",
    "admin_adjust",
    "purchase_refund",
    # issue 14 (migration 0010): referrals, promo codes, the prompt helper
    "referral_bonus",
    "referral_share",
    "promo",
    "assist",
    "assist_refund",
)


@dataclass(frozen=True)
class User:
    id: int
    username: str | None
    first_name: str | None
    last_name: str | None
    language: str | None
    balance: int
    blocked: bool
    created_at: datetime
    last_seen_at: datetime
    start_payload: str | None = None
    banned: bool = False


@dataclass(frozen=True)
class Generation:
    id: int
    user_id: int
    chat_id: int
    status: GenerationStatus
    task_id: str | None
    kind: str
    model_key: str
    result_urls: list[str] = field(default_factory=list)
    preview_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    prompt: str = ""
    # Object paths (MediaStore keys) of our stored copies, in result order; empty until stored.
    stored_paths: tuple[str, ...] = ()
    error: str | None = None
    created_at: datetime | None = None
    cost: int = 0
    request_key: str | None = None
    kie_state: str | None = None
    fail_code: str | None = None
    poll_attempts: int = 0
    next_poll_at: datetime | None = None
    deadline_at: datetime | None = None
    submitted_at: datetime | None = None
    callback_received_at: datetime | None = None
    completed_at: datetime | None = None
    delivered_at: datetime | None = None
    progress_message_id: int | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    updated_at: datetime | None = None
    stage_attempts: int = 0  # failed attempts of the current stage (bot/services/pipeline/failures.py)
    stage_error: str | None = None
    alerted_at: datetime | None = None

    def __post_init__(self) -> None:
        # Records built by hand (tests, previews) may name the status by its plain string.
        object.__setattr__(self, "status", GenerationStatus(self.status))

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    user_id: int
    delta: int
    reason: str
    generation_id: int | None
    payment_charge_id: str | None
    admin_id: int | None
    note: str | None
    created_at: datetime
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Payment:
    id: int
    telegram_payment_charge_id: str
    user_id: int
    stars: int
    credits: int
    payload: str | None
    created_at: datetime
    refunded_at: datetime | None
    refunded_credits: int | None = None  # what the refund debited (≤ credits)


@dataclass(frozen=True)
class StartResult:
    generation: Generation
    created: bool
