"""Repository(engine): every database operation kiebot performs, one transaction each.

Users and money (storage/repository/_money.py)
    register_user, get_user, find_user_by_username, set_language, set_blocked,
    credit_purchase, reverse_purchase, admin_adjust, admin_set, ledger, payments_for,
    get_payment, ledger_check
Lifecycle (storage/repository/_lifecycle.py)
    start_generation (charge + insert queued), fail_generation / cancel_generation (refund
    once), transition (forward-only compare-and-set), update_fields, accept_callback(s) (one
    conditional UPDATE per KIE callback; several in one transaction), confirm_results, claim / renew_lease / release (leases),
    mark_delivered, record_stage_failure / mark_alerted / fail_undelivered (a stage that keeps
    failing on one row: counted, alerted once, given up with one refund)
Update inbox (storage/repository/_inbox.py)
    inbox_add (deduplicated by update_id), inbox_claim (per chat, leased), inbox_renew,
    inbox_mark_handled, inbox_release, inbox_prune, inbox_unhandled
Catalog overrides (storage/repository/_catalog.py)
    model_overrides, set_model_override (admins' /models: on/off and ⭐ price per model)
Referrals, promo codes, daily free (storage/repository/_referrals.py)
    referral_stats, inviter_for, create_promo, list_promos, get_promo, set_promo_active,
    redeem_promo (once per user, never past max_uses), daily_free_left; register_user,
    credit_purchase, reverse_purchase and start_generation call its hooks in their transactions
Support and bans (storage/repository/_support.py)
    set_banned, add_support_message, claim_support_message (keyed by the user's message, so
    a replay forwards nothing twice), add_support_forwards, support_for_forward, record_support_reply (once per
    admin message), support_messages_of
Prompt helper (storage/repository/_assist.py)
    assist_charge (once per press key), assist_refund (once, what that key was charged)
Photo templates (storage/repository/_templates.py)
    template_rows, set_template (admins' changes to a template), add_template (a new one, once)
Variant orders (storage/repository/_variants.py)
    start_variants (N rows and N spend rows in one transaction), variant_rows
Broadcasts (storage/repository/_broadcast.py)
    count_segment, create_broadcast (a draft), get_broadcast, start_broadcast (draft → running
    with one recipient row per user), set_broadcast_state (pause/resume/cancel), claim_broadcast
    (leased; a takeover turns "sending" rows into "unknown"), claim_recipients (pending →
    sending), mark_recipients, finish_broadcast, mark_broadcast_reported, release_broadcast,
    broadcast_counts, broadcast_recipients_of
Read models (storage/repository/_queries.py)
    get_generation, get_generation_by_task, list_library, count_library, count_in_flight,
    queue_position, queue_depths, stats, metrics_view (/metrics), progress_view (one query for
    the progress tracker)

Money invariant: users.balance == SUM(credit_ledger.delta) >= 0 after every call; exactly-once
effects (signup bonus, spend, refund, purchase, purchase refund) are unique indexes, so repeats
and races resolve in the database. Database failures surface as storage.errors types.
"""

from __future__ import annotations

from storage.repository._assist import AssistRepository
from storage.repository._broadcast import Broadcast, BroadcastRepository
from storage.repository._catalog import CatalogRepository, ModelOverrideRow
from storage.repository._lifecycle import CALLBACK_RESULTS, CallbackNote, CallbackWrite
from storage.repository._inbox import InboxRepository, InboxUpdate
from storage.repository._queries import QueryRepository
from storage.repository._referrals import (
    Promo,
    PromoError,
    ReferralRepository,
    ReferralStats,
    ReferralTerms,
    SignupRules,
)
from storage.repository._support import SupportRepository
from storage.repository._templates import TemplateRepository, TemplateRow
from storage.repository._variants import MAX_VARIANTS, VariantRepository


class Repository(ReferralRepository, QueryRepository, InboxRepository, CatalogRepository,
                 SupportRepository, AssistRepository, TemplateRepository, VariantRepository,
                 BroadcastRepository):
    """See the module docstring for the method list."""


__all__ = ["Broadcast", "CALLBACK_RESULTS", "MAX_VARIANTS", "CallbackNote", "CallbackWrite",
           "InboxUpdate", "ModelOverrideRow", "Promo", "PromoError", "ReferralStats", "ReferralTerms",
           "Repository", "SignupRules", "TemplateRow"]
