"""Users and money. Every balance change writes its ledger row in the same transaction, and
every exactly-once effect is guarded by a unique index (see storage/schema.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.errors import (
    DuplicateError,
    InsufficientBalanceError,
    InvalidFieldError,
    UnknownUserError,
)
from storage.models import NON_FINAL_STATUSES, LedgerEntry, Payment, User
from storage.repository._base import (
    RepositoryBase,
    check_amount,
    check_id,
    check_text,
    ledger_from,
    payment_from,
    status_in,
    to_utc,
    user_from,
    utcnow,
)
from storage.repository._prepared import (
    ADD_TO_BALANCE,
    SELECT_LEDGER,
    SELECT_LEDGER_WITH_BALANCE,
    SELECT_USER,
    SELECT_USER_AWAITING,
    signup_in_one_statement,
)
from storage.schema import credit_ledger, payments, users


# How stale users.last_seen_at may be while the user has nothing undelivered: register_user
# refreshes it only when it is this old (a write per update serialised every update behind
# SQLite's one write lock).
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


class MoneyRepository(RepositoryBase):
    # -- users -------------------------------------------------------------------------------

    async def register_user(
        self,
        user_id: int,
        *,
        username: str | None,
        first_name: str | None,
        last_name: str | None,
        language: str | None,
        signup_bonus: int,
        start_payload: str | None = None,
        now: datetime | None = None,
        signup_rules: Any = None,
    ) -> tuple[User, bool]:
        """Insert the user or refresh names and last_seen_at. The bonus is paid once per user
        ever (unique index); language is kept on refresh because the user may have chosen it.

        Any update from the user proves they can be reached again, so `blocked` is cleared: a
        user who blocked and later unblocked the bot gets their undelivered results. The first
        non-empty `start_payload` (deep link) is kept; later ones never overwrite it.

        Called on every update, so it reads first (no write lock) and writes only when something
        would change: a new user, other names, `blocked` to clear, a payload to keep, or a
        last_seen_at older than LAST_SEEN_RESOLUTION — or at once while the user has an
        undelivered generation: only the sends for those can meet a 403, and mark_unreachable
        needs the exact time of the user's latest update to judge it.

        A new user is tied to their inviter (a ref_ deep link) here, and `signup_rules`
        (storage/repository/_referrals.py SignupRules) may withhold the bonus. A plain signup
        (neither) on Postgres is one statement (_prepared.signup_in_one_statement)."""
        check_id("user_id", user_id)
        check_amount("signup_bonus", signup_bonus, allow_zero=True)
        if start_payload is not None:
            start_payload = start_payload.strip()[:64] or None
        now = to_utc(now) or utcnow()
        username = username.lstrip("@") if username else username
        rows = await self._read_rows(SELECT_USER_AWAITING, {"uid": user_id})
        row = rows[0] if rows else None
        if row is not None:
            known = user_from(row)
            if not _needs_touch(known, username, first_name, last_name, start_payload, now,
                                awaiting_delivery=bool(row.awaiting_delivery)):
                return known, False
        if (row is None and self._autocommit is not None
                and self._plain_signup(start_payload, signup_rules if signup_bonus > 0 else None)):
            new = await self._direct(signup_in_one_statement(), dict(  # one statement: autocommit
                uid=user_id, username=username, first_name=first_name, last_name=last_name,
                language=language, bonus=signup_bonus, now=now, start_payload=start_payload))
            if new:
                return user_from(new[0]), True
            # (a twin update inserted the user first: refreshed below)
        async with self._tx() as conn:
            created = False
            if row is None:  # (a twin update may insert first: then this is a refresh)
                created = await self._insert_once(conn, users, dict(
                    id=user_id, username=username, first_name=first_name, last_name=last_name,
                    language=language, balance=0, blocked=False, created_at=now,
                    last_seen_at=now, start_payload=start_payload,
                ))
            if not created:
                values: dict[str, object] = dict(
                    username=username, first_name=first_name, last_name=last_name,
                    last_seen_at=now, blocked=False,
                )
                if start_payload is not None:
                    values["start_payload"] = sa.func.coalesce(users.c.start_payload, start_payload)
                await conn.execute(sa.update(users).where(users.c.id == user_id).values(**values))
            else:
                # (no bonus to pay: the rules are not consulted, so no day's cap is used up)
                allowed = await self._on_signup(conn, user_id, start_payload,
                                                signup_rules if signup_bonus > 0 else None, now)
                if signup_bonus > 0 and allowed:
                    await self._credit(conn, user_id, signup_bonus, reason="signup_bonus", now=now)
            return await self._user(conn, user_id), created

    async def get_user(self, user_id: int) -> User | None:
        check_id("user_id", user_id)
        rows = await self._read_rows(SELECT_USER, {"uid": user_id})
        return user_from(rows[0]) if rows else None

    async def find_user_by_username(self, username: str) -> User | None:
        check_text("username", username, max_length=65)
        name = username.strip().lstrip("@").lower()
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(users)
                    .where(sa.func.lower(users.c.username) == name)
                    .order_by(users.c.last_seen_at.desc(), users.c.id)
                    .limit(1)
                )
            ).first()
        return user_from(row) if row else None

    async def set_language(self, user_id: int, language: str) -> None:
        check_text("language", language, max_length=16)
        await self._update_user(user_id, language=language)

    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        await self._update_user(user_id, blocked=bool(blocked))

    async def mark_unreachable(self, user_id: int, *, since: datetime) -> bool:
        """A send begun at `since` was refused with 403: mark the user blocked, unless they wrote
        to us after `since` — then the 403 is older news than their message (which unblocked
        them), and marking them would stop every delivery until they write again.
        True when the mark was written.

        For the sends of a generation not yet delivered (the only ones that call this) the
        user's last_seen_at is exact: register_user writes it on every update while such a
        generation exists (a send's generation exists before the send begins)."""
        check_id("user_id", user_id)
        since = to_utc(since)
        async with self._tx() as conn:
            result = await conn.execute(
                sa.update(users).where(users.c.id == user_id, users.c.last_seen_at <= since)
                .values(blocked=True)
            )
            return result.rowcount == 1

    async def _update_user(self, user_id: int, **values: object) -> None:
        check_id("user_id", user_id)
        async with self._tx() as conn:
            result = await conn.execute(sa.update(users).where(users.c.id == user_id).values(**values))
            if result.rowcount == 0:
                raise UnknownUserError(user_id)

    # -- purchases ---------------------------------------------------------------------------

    async def credit_purchase(
        self,
        *,
        user_id: int,
        charge_id: str,
        stars: int,
        credits: int,
        payload: str | None,
        now: datetime | None = None,
        referral: Any = None,
    ) -> bool:
        """Credit a Telegram Stars payment once per charge id; False when already credited.
        In the same transaction: the referral bonuses and share under `referral`
        (ReferralTerms), so they are paid exactly when the purchase is."""
        check_id("user_id", user_id)
        check_text("charge_id", charge_id, max_length=256)
        check_amount("stars", stars)
        check_amount("credits", credits)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            await self._lock_user(conn, user_id)
            if not await self._insert_once(conn, payments, dict(
                    telegram_payment_charge_id=charge_id, user_id=user_id, stars=stars,
                    credits=credits, payload=payload, created_at=now)):
                return False
            await self._credit(conn, user_id, credits, reason="purchase", charge_id=charge_id, now=now)
            await self._on_purchase(conn, user_id, charge_id, credits, referral, now)
            return True

    async def reverse_purchase(
        self, charge_id: str, *, admin_id: int | None = None, now: datetime | None = None
    ) -> Payment | None:
        """Mark a payment refunded and take its credits back once, never below zero (what was
        already spent stays spent). The returned Payment's `refunded_credits` is what was
        actually debited (also the ledger row's -delta). None if the charge is unknown;
        DuplicateError if repeated."""
        check_text("charge_id", charge_id, max_length=256)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    sa.select(payments).where(payments.c.telegram_payment_charge_id == charge_id)
                )
            ).first()
            if row is None:
                return None
            payment = payment_from(row)
            balance = await self._lock_user(conn, payment.user_id)
            marked = await conn.execute(
                sa.update(payments)
                .where(payments.c.id == payment.id, payments.c.refunded_at.is_(None))
                .values(refunded_at=now)
            )
            if marked.rowcount == 0:
                raise DuplicateError(f"payment {charge_id!r} was already refunded")
            amount = min(payment.credits, balance)
            await conn.execute(
                sa.update(users).where(users.c.id == payment.user_id, users.c.balance >= amount)
                .values(balance=users.c.balance - amount)
            )
            await conn.execute(
                sa.update(payments).where(payments.c.id == payment.id)
                .values(refunded_credits=amount)
            )
            await conn.execute(
                sa.insert(credit_ledger).values(
                    user_id=payment.user_id, delta=-amount, reason="purchase_refund",
                    payment_charge_id=charge_id, admin_id=admin_id, created_at=now,
                    note=None if amount == payment.credits else f"partial: {amount} of {payment.credits}",
                )
            )
            await self._on_purchase_refund(conn, payment, now)
            row = (await conn.execute(sa.select(payments).where(payments.c.id == payment.id))).one()
            return payment_from(row)

    # -- admin -------------------------------------------------------------------------------

    async def admin_adjust(
        self, user_id: int, delta: int, *, admin_id: int, note: str | None = None,
        now: datetime | None = None, idempotency_key: str | None = None,
    ) -> int:
        """Add (or take, if negative) credits; refuses to go below zero. Returns the balance.
        Every admin change names its admin (a positive Telegram id), so the ledger can always
        say who moved the money; `note` is optional and stored as given (blank → NULL).
        `idempotency_key` (e.g. the admin's message, "<chat>:<message_id>") makes a repeat of
        the same request raise DuplicateError without any change."""
        check_id("user_id", user_id)
        check_amount("delta", delta, allow_negative=True)
        admin_id, note = _check_admin(admin_id, note)
        key = check_text("idempotency_key", idempotency_key, max_length=128, optional=True)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            await self._lock_user(conn, user_id)
            await self._admin_row(conn, user_id, delta, admin_id=admin_id, note=note, key=key,
                                  now=now)
            if delta < 0:
                await self._debit(conn, user_id, -delta)
            else:
                await conn.execute(
                    sa.update(users).where(users.c.id == user_id).values(balance=users.c.balance + delta)
                )
            return await self._balance(conn, user_id)

    async def admin_set(
        self, user_id: int, balance: int, *, admin_id: int, note: str | None = None,
        now: datetime | None = None, idempotency_key: str | None = None,
    ) -> int:
        """Set the balance to an exact value through one admin_adjust ledger row (same
        admin_id / note / idempotency_key rules as admin_adjust)."""
        check_id("user_id", user_id)
        check_amount("balance", balance, allow_zero=True)
        admin_id, note = _check_admin(admin_id, note)
        key = check_text("idempotency_key", idempotency_key, max_length=128, optional=True)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            current = await self._lock_user(conn, user_id)
            delta = balance - current
            if delta == 0 and key is None:
                return current
            # A keyed "=N" that changes nothing still records its (zero) row, so its replay
            # is recognised as one after a later change moved the balance.
            await self._admin_row(conn, user_id, delta, admin_id=admin_id, note=note, key=key,
                                  now=now)
            await conn.execute(sa.update(users).where(users.c.id == user_id).values(balance=balance))
            return balance

    async def _admin_row(self, conn: AsyncConnection, user_id: int, delta: int, *,
                         admin_id: int, note: str | None, key: str | None, now: datetime) -> None:
        """The ledger row first: its unique key decides "already done" before money moves."""
        if not await self._insert_once(conn, credit_ledger, dict(
                user_id=user_id, delta=delta, reason="admin_adjust", admin_id=admin_id,
                note=note, created_at=now, idempotency_key=key)):
            raise DuplicateError(f"admin change {key!r} was already applied")

    # -- reading -----------------------------------------------------------------------------

    async def ledger(self, user_id: int, limit: int = 10) -> list[LedgerEntry]:
        check_id("user_id", user_id)
        limit = check_amount("limit", limit)
        async with self._read() as conn:
            rows = await conn.execute(SELECT_LEDGER, {"uid": user_id, "limit": limit})
            return [ledger_from(r) for r in rows]

    async def balance_and_ledger(self, user_id: int, limit: int = 10) -> tuple[int, list[LedgerEntry]]:
        """The balance (0 for an unknown user) and `ledger(user_id, limit)`: the balance screen
        in one statement, the balance on every ledger row (a second read only for a user with
        no ledger rows)."""
        check_id("user_id", user_id)
        limit = check_amount("limit", limit)
        rows = await self._read_rows(SELECT_LEDGER_WITH_BALANCE, {"uid": user_id, "limit": limit})
        if rows:
            return int(rows[0].user_balance or 0), [ledger_from(r) for r in rows]
        users_rows = await self._read_rows(SELECT_USER, {"uid": user_id})
        return (int(users_rows[0].balance) if users_rows else 0), []

    async def payments_for(self, user_id: int, limit: int = 10) -> list[Payment]:
        check_id("user_id", user_id)
        limit = check_amount("limit", limit)
        async with self._read() as conn:
            rows = await conn.execute(
                sa.select(payments).where(payments.c.user_id == user_id)
                .order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(limit)
            )
            return [payment_from(r) for r in rows]

    async def get_payment(self, charge_id: str) -> Payment | None:
        check_text("charge_id", charge_id, max_length=256)
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(payments).where(payments.c.telegram_payment_charge_id == charge_id)
                )
            ).first()
        return payment_from(row) if row else None

    async def ledger_check(self) -> list[tuple[int, int, int]]:
        """(user_id, balance, ledger_sum) for every user whose cached balance is wrong."""
        sums = (
            sa.select(credit_ledger.c.user_id, sa.func.sum(credit_ledger.c.delta).label("total"))
            .group_by(credit_ledger.c.user_id).subquery()
        )
        total = sa.func.coalesce(sums.c.total, 0)
        async with self._read(scan=True) as conn:
            rows = await conn.execute(
                sa.select(users.c.id, users.c.balance, total)
                .select_from(users.outerjoin(sums, sums.c.user_id == users.c.id))
                .where(users.c.balance != total).order_by(users.c.id)
            )
            return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    # -- referral hooks (storage/repository/_referrals.py overrides them) ---------------------

    async def _on_signup(self, conn: AsyncConnection, user_id: int, start_payload: str | None,
                         rules: Any, now: datetime) -> bool:
        return True

    async def _on_purchase(self, conn: AsyncConnection, user_id: int, charge_id: str,
                           credits: int, terms: Any, now: datetime) -> None:
        return None

    async def _on_purchase_refund(self, conn: AsyncConnection, payment: Payment,
                                  now: datetime) -> None:
        return None

    async def _take_daily_free(self, conn: AsyncConnection, user_id: int, allowance: int,
                               now: datetime) -> int | None:
        return None

    async def _record_daily_free(self, conn: AsyncConnection, user_id: int, slot: int,
                                 generation_id: int, now: datetime) -> None:
        return None

    # -- helpers shared with the lifecycle ---------------------------------------------------

    async def _user(self, conn: AsyncConnection, user_id: int) -> User:
        row = (await conn.execute(SELECT_USER, {"uid": user_id})).first()
        if row is None:
            raise UnknownUserError(user_id)
        return user_from(row)

    async def _lock_user(self, conn: AsyncConnection, user_id: int) -> int:
        """Lock the user's row (Postgres; SQLite already holds the write lock) and return the
        balance. Money operations for one user thereby run one at a time."""
        balance = await conn.scalar(
            sa.select(users.c.balance).where(users.c.id == user_id).with_for_update()
        )
        if balance is None:
            raise UnknownUserError(user_id)
        return int(balance)

    async def _balance(self, conn: AsyncConnection, user_id: int) -> int:
        return int(await conn.scalar(sa.select(users.c.balance).where(users.c.id == user_id)))

    async def _debit(self, conn: AsyncConnection, user_id: int, amount: int) -> None:
        result = await conn.execute(
            sa.update(users).where(users.c.id == user_id, users.c.balance >= amount)
            .values(balance=users.c.balance - amount)
        )
        if result.rowcount == 0:
            raise InsufficientBalanceError(await self._balance(conn, user_id), amount)

    async def _credit(
        self, conn: AsyncConnection, user_id: int, amount: int, *, reason: str, now: datetime,
        charge_id: str | None = None, generation_id: int | None = None,
    ) -> bool:
        """Insert the ledger row first (its unique index decides "already done"), then move
        the balance; False and no change when the row already existed."""
        if not await self._insert_once(conn, credit_ledger, dict(
                user_id=user_id, delta=amount, reason=reason, payment_charge_id=charge_id,
                generation_id=generation_id, created_at=now)):
            return False
        await conn.execute(ADD_TO_BALANCE, {"uid": user_id, "amount": amount})
        return True


MAX_NOTE = 500


def _needs_touch(user: User, username: str | None, first_name: str | None,
                 last_name: str | None, start_payload: str | None, now: datetime, *,
                 awaiting_delivery: bool) -> bool:
    """Whether register_user must write: what it would write differs from the row."""
    return (
        user.blocked
        or (user.username, user.first_name, user.last_name) != (username, first_name, last_name)
        or (start_payload is not None and user.start_payload is None)
        or user.last_seen_at is None
        or (awaiting_delivery and now > user.last_seen_at)
        or now - user.last_seen_at >= LAST_SEEN_RESOLUTION
    )


def _check_admin(admin_id: object, note: object) -> tuple[int, str | None]:
    """Validate the admin's id and note before any write."""
    if admin_id is None:
        raise InvalidFieldError("admin_id is required for an admin balance change")
    check_id("admin_id", admin_id)
    if admin_id <= 0:  # type: ignore[operator]
        raise InvalidFieldError(f"admin_id must be a positive Telegram user id, got {admin_id}")
    if note is None:
        return admin_id, None  # type: ignore[return-value]
    if not isinstance(note, str):
        raise InvalidFieldError(f"note must be a string, got {type(note).__name__}")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise InvalidFieldError(f"note is longer than {MAX_NOTE} characters")
    return admin_id, note or None  # type: ignore[return-value]


# Referenced by the lifecycle mixin; kept here so both halves agree on what "in flight" is.
IN_FLIGHT = status_in(NON_FINAL_STATUSES)
