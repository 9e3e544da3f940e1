"""AccountService: users, balances, Stars payments and admin money operations.

Handlers never see the repository; every money rule the conversation needs is here, so it can be
tested without Telegram. Top-up packs are named in the invoice payload by their numbers
("pack:<stars>:<credits>:v1"), which makes a payload from an old configuration recognisably stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.errors import (
    DuplicateError,
    InsufficientBalanceError,
    InvalidAmountError,
    InvalidFieldError,
    UnknownUserError,
)
from storage.models import GenerationStatus
from storage.repository import ReferralTerms, SignupRules

PAYLOAD_VERSION = "v1"
_DELTA = re.compile(r"^([+\-=])(\d+)$")
_RU_CODES = {"ru", "uk", "be", "kk", "ky", "uz", "tg", "hy", "az", "ka", "mo", "tt", "ba", "cv"}


def language_for(code: str | None) -> str:
    """"ru" for Russian and neighbouring languages, otherwise "en"."""
    if not code:
        return "en"
    return "ru" if code.lower().replace("_", "-").split("-")[0] in _RU_CODES else "en"


MAX_USERNAME = 64  # users.username; Telegram's own limit is 32
MAX_CHARGE_ID = 256  # payments.telegram_payment_charge_id


class AccountError(Exception):
    """Bad input to an account operation. `.reason` is English and safe for logs; `.code` and
    `.params` let a handler say the same thing in the admin's language."""

    def __init__(self, reason: str, *, code: str = "generic", **params: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Pack:
    stars: int
    credits: int

    @property
    def payload(self) -> str:
        return f"pack:{self.stars}:{self.credits}:{PAYLOAD_VERSION}"


@dataclass(frozen=True)
class CreditResult:
    user: Any
    old_balance: int
    new_balance: int
    # The same request (idempotency key) was applied before, e.g. a replayed update: nothing
    # moved now, and new_balance is the balance as it is.
    replayed: bool = False

    @property
    def delta(self) -> int:
        return self.new_balance - self.old_balance


@dataclass(frozen=True)
class PaymentResult:
    credited: bool  # False: this charge id was credited before (a replayed update)
    credits: int
    balance: int


@dataclass(frozen=True)
class UserReport:
    user: Any
    generation_count: int
    generations: list
    payments: list


def parse_payload(payload: str) -> Pack | None:
    parts = (payload or "").split(":")
    if len(parts) != 4 or parts[0] != "pack" or parts[3] != PAYLOAD_VERSION:
        return None
    try:
        stars, credits = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    return Pack(stars, credits) if stars > 0 and credits > 0 else None


class AccountService:
    def __init__(self, repository: Any, *, signup_bonus: int, packs: Any, admin_ids: Any,
                 referral: ReferralTerms | None = None,
                 signup_rules: SignupRules | None = None) -> None:
        self._repo = repository
        self.signup_bonus = signup_bonus
        # Referral bonuses and shares are paid inside the purchase's own transaction; the
        # signup rules may withhold the signup bonus (storage/repository/_referrals.py).
        self.referral = referral
        self.signup_rules = signup_rules
        self._packs = tuple(Pack(int(p.stars), int(p.credits)) for p in packs)
        self._admins = frozenset(int(a) for a in admin_ids)

    # users -----------------------------------------------------------------------------------
    async def register(
        self,
        user_id: int,
        *,
        username: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        language_code: str | None = None,
        start_payload: str | None = None,
    ) -> tuple[Any, bool]:
        """Create the user (signup bonus once ever) or refresh names; returns (user, created).
        Also marks the user reachable again (an update from them means they unblocked us) and
        keeps the first deep-link `start_payload`."""
        return await self._repo.register_user(
            user_id,
            username=username,
            first_name=first_name,
            last_name=last_name,
            language=language_for(language_code),
            signup_bonus=self.signup_bonus,
            start_payload=start_payload,
            signup_rules=self.signup_rules,
        )

    async def set_blocked(self, user_id: int, blocked: bool) -> bool:
        """Record that the user blocked (or unblocked) the bot; False for an unknown user."""
        try:
            await self._repo.set_blocked(user_id, blocked)
        except UnknownUserError:
            return False
        return True

    async def get_user(self, user_id: int) -> Any:
        return await self._repo.get_user(user_id)

    async def balance(self, user_id: int) -> int:
        user = await self._repo.get_user(user_id)
        return int(user.balance) if user else 0

    async def ledger(self, user_id: int, limit: int = 5) -> list:
        return await self._repo.ledger(user_id, limit=limit)

    async def balance_and_ledger(self, user_id: int, limit: int = 5) -> tuple[int, list]:
        """balance() and ledger() in one read (the balance screen)."""
        return await self._repo.balance_and_ledger(user_id, limit=limit)

    async def set_language(self, user_id: int, language: str) -> None:
        if language not in ("ru", "en"):
            raise AccountError(f"unsupported language {language!r}", code="bad_language")
        await self._repo.set_language(user_id, language)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and int(user_id) in self._admins

    # payments --------------------------------------------------------------------------------
    @property
    def packs(self) -> tuple[Pack, ...]:
        return self._packs

    def find_pack(self, stars: int, credits: int) -> Pack | None:
        pack = Pack(stars, credits)
        return pack if pack in self._packs else None

    def check_pre_checkout(self, *, payload: str, currency: str, total_amount: int) -> Pack | None:
        """The pack to sell, or None when the payload is unknown, stale or the amount differs."""
        pack = parse_payload(payload)
        if pack is None or pack not in self._packs:
            return None
        if currency != "XTR" or int(total_amount) != pack.stars:
            return None
        return pack

    async def credit_payment(
        self, *, user_id: int, charge_id: str, payload: str, total_amount: int
    ) -> PaymentResult:
        """Credit a successful payment once per charge id.

        Credits follow the payload the user paid for, even if the packs changed since the
        pre-checkout: Telegram has already taken the Stars.
        """
        pack = parse_payload(payload)
        credits = pack.credits if pack else int(total_amount)
        credited = await self._repo.credit_purchase(
            user_id=user_id, charge_id=charge_id, stars=int(total_amount), credits=credits,
            payload=payload, referral=self.referral,
        )
        return PaymentResult(credited, credits, await self.balance(user_id))

    async def get_payment(self, charge_id: str) -> Any:
        """None for an unknown charge id, and for one longer than any can be (an admin's typo
        is "no such payment", not a storage error)."""
        if len(charge_id) > MAX_CHARGE_ID:
            return None
        return await self._repo.get_payment(charge_id)

    async def reverse_purchase(self, charge_id: str, *, admin_id: int | None = None) -> Any:
        """Debit a refunded purchase once (raises storage DuplicateError when already done).
        The returned payment's `refunded_credits` is what was actually debited: never more
        than the balance, so credits already spent stay spent."""
        return await self._repo.reverse_purchase(charge_id, admin_id=admin_id)

    # support and bans --------------------------------------------------------------------------
    async def set_banned(self, user_id: int, banned: bool) -> bool:
        """True when the flag changed (False: it was so already)."""
        return await self._repo.set_banned(user_id, banned)

    async def add_support_message(self, user_id: int, text: str,
                                  forwards: list[tuple[int, int]]) -> int:
        return await self._repo.add_support_message(user_id, text, forwards)

    async def claim_support_message(self, user_id: int, text: str, *, chat_id: int,
                                    message_id: int) -> int | None:
        """The support id, or None when this user message was stored before (a replay)."""
        return await self._repo.claim_support_message(user_id, text, chat_id=chat_id,
                                                      message_id=message_id)

    async def add_support_forwards(self, support_id: int, forwards: list[tuple[int, int]]) -> None:
        await self._repo.add_support_forwards(support_id, forwards)

    async def support_for_forward(self, admin_id: int, message_id: int) -> tuple[int, int] | None:
        return await self._repo.support_for_forward(admin_id, message_id)

    async def record_support_reply(self, support_id: int, admin_id: int, message_id: int,
                                   text: str) -> bool:
        return await self._repo.record_support_reply(support_id, admin_id, message_id, text)

    # admin -----------------------------------------------------------------------------------
    async def find_user(self, who: str) -> Any:
        """A user by id, @username or username; None when there is none — including an id past
        64 bits or a name longer than Telegram allows, which no user can have."""
        who = (who or "").strip()
        if who.lstrip("-").isdigit():
            number = int(who)
            return await self._repo.get_user(number) if -(2**63) <= number < 2**63 else None
        name = who.removeprefix("@")
        if not name or len(name) > MAX_USERNAME:
            return None
        return await self._repo.find_user_by_username(name)

    async def admin_credit(
        self, who: str, amount: str, *, admin_id: int, note: str | None = None,
        idempotency_key: str | None = None,
    ) -> CreditResult:
        """+N / -N / =N; never below zero (AccountError), unknown user → AccountError.
        `admin_id` is recorded on the ledger row; a blank `note` is stored as none. With an
        `idempotency_key` (the admin's message), a repeat moves nothing (`replayed`)."""
        match = _DELTA.match((amount or "").strip())
        if not match:
            raise AccountError("amount must look like +N, -N or =N", code="bad_amount")
        if len(match.group(2)) > 12:  # far past the ledger's limit; not even parsed
            raise AccountError("amount is too large", code="amount_range")
        user = await self.find_user(who)
        if user is None:
            raise AccountError(f"no such user: {who}", code="no_user", who=who)
        sign, number = match.group(1), int(match.group(2))
        old = int(user.balance)
        try:
            if sign == "=":
                new = await self._repo.admin_set(user.id, number, admin_id=admin_id, note=note,
                                                 idempotency_key=idempotency_key)
            else:
                delta = number if sign == "+" else -number
                if delta == 0:
                    raise AccountError("amount must not be zero", code="zero_amount")
                new = await self._repo.admin_adjust(user.id, delta, admin_id=admin_id, note=note,
                                                    idempotency_key=idempotency_key)
        except DuplicateError:
            current = await self._repo.get_user(user.id)
            balance = int(current.balance if current is not None else old)
            return CreditResult(user=user, old_balance=balance, new_balance=balance,
                                replayed=True)
        except InsufficientBalanceError:
            raise AccountError(f"balance would go below zero (it is {old})", code="below_zero",
                               balance=old) from None
        except InvalidAmountError as exc:
            raise AccountError(f"amount is not acceptable: {exc}", code="amount_range") from None
        except InvalidFieldError as exc:  # a bad admin id or an overlong note
            raise AccountError(f"not recorded: {exc}", code="bad_note") from None
        return CreditResult(user=user, old_balance=old, new_balance=int(new))

    async def user_report(self, user: Any, *, limit: int = 5) -> UserReport:
        # Every status, not just the library's: an admin looks here for failed and stuck runs.
        every = tuple(GenerationStatus)
        return UserReport(
            user=user,
            generation_count=await self._repo.count_library(user.id, statuses=every),
            generations=await self._repo.list_library(user.id, limit=limit, offset=0,
                                                      statuses=every),
            payments=await self._repo.payments_for(user.id, limit=limit),
        )

    async def stats(self, *, now: datetime | None = None) -> dict[str, dict]:
        now = now or datetime.now(UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return {
            "today": await self._repo.stats(since=today),
            "7 days": await self._repo.stats(since=now - timedelta(days=7)),
            "all": await self._repo.stats(since=None),
        }

    async def ledger_check(self) -> list[tuple[int, int, int]]:
        return await self._repo.ledger_check()
