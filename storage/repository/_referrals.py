"""Referrals, promo codes, the signup bonus's guard and the daily free allowance.

Every money effect here is a ledger row keyed in the database, written in the same transaction as
what caused it:

* the friend is tied to the inviter in `register_user`'s transaction (referrals row);
* both referral bonuses and the inviter's share are written inside `credit_purchase`'s
  transaction (so a replayed successful_payment, or the reconciliation job crediting the same
  charge, either finds the payment row taken and does nothing, or does it all once), keyed
  `ref:fb:<friend>` / `ref:ib:<friend>` (once per friend, ever) and `ref:s:<charge>` (once per
  purchase) on credit_ledger.idempotency_key;
* a refund (reverse_purchase) takes back the share of that purchase, and both bonuses when it
  was the purchase that paid them, never below zero (what was spent stays spent), keyed the same
  way with an `r` (`ref:sr:…`, `ref:ibr:…`, `ref:fbr:…`);
* a promo redemption is a (code, user) row plus one conditional UPDATE of the code's `used`;
* a daily free use is a (user, day, slot) row tied to its generation; failing the generation
  deletes it (storage/repository/_lifecycle.py `_fail`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.errors import StorageError
from storage.models import Payment
from storage.repository._base import (
    check_amount,
    check_id,
    check_text,
    to_utc,
    utcnow,
)
from storage.repository._money import MoneyRepository
from storage.repository._prepared import ADD_TO_BALANCE
from storage.schema import (
    credit_ledger,
    daily_counters,
    daily_free_uses,
    promo_codes,
    promo_redemptions,
    referrals,
    users,
)

REF_PREFIX = "ref_"
PROMO_PREFIX = "promo_"
MAX_CODE = 32
SIGNUP_COUNTER = "signup_bonus"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def referral_code(user_id: int) -> str:
    """The user's invite code: their id in base 36 (short in a link; guessing one gains nothing,
    a bonus needs a real purchase by a new user)."""
    n, out = int(user_id), ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def inviter_of(payload: str | None) -> int | None:
    """The inviter's id from a ref_<code> deep-link payload, else None."""
    if not payload or not payload.startswith(REF_PREFIX):
        return None
    code = payload[len(REF_PREFIX):].lower()
    if not code or len(code) > 13 or any(c not in _DIGITS for c in code):
        return None
    value = int(code, 36)
    return value if 0 < value < 2**63 else None


def promo_of(payload: str | None) -> str | None:
    """The code of a promo_<CODE> deep-link payload, upper-cased, else None."""
    if not payload or not payload.startswith(PROMO_PREFIX):
        return None
    return normalise_code(payload[len(PROMO_PREFIX):])


def normalise_code(text: str | None) -> str | None:
    """A promo code as stored: upper-case letters, digits, _ and -, 1..32 characters."""
    code = (text or "").strip().upper()
    if not code or len(code) > MAX_CODE or not all(c.isascii() and (c.isalnum() or c in "_-")
                                                   for c in code):
        return None
    return code


def utc_day(now: datetime) -> str:
    return to_utc(now).strftime("%Y-%m-%d")  # type: ignore[union-attr]


def _charge_key(charge_id: str) -> str:
    # idempotency_key holds 128 characters; Telegram's charge ids are far shorter, but a longer
    # one is hashed rather than refused.
    return charge_id if len(charge_id) <= 100 else hashlib.sha256(charge_id.encode()).hexdigest()


@dataclass(frozen=True)
class SignupRules:
    """Operator-set guard on the signup bonus (off by default: everyone new gets it).
    `invited_only`: only users whose first /start carried a valid ref_ or promo_ link;
    `daily_cap`: at most this many signup bonuses per UTC day (0 = no cap)."""

    invited_only: bool = False
    daily_cap: int = 0


@dataclass(frozen=True)
class ReferralTerms:
    """Operator-set: the bonus to both on the friend's first purchase, and the inviter's share
    (percent, rounded down) of each of the friend's purchases."""

    bonus: int = 0
    share_percent: int = 0


@dataclass(frozen=True)
class ReferralStats:
    invited: int
    paid: int
    earned: int


@dataclass(frozen=True)
class Promo:
    code: str
    credits: int
    max_uses: int
    used: int
    expires_at: datetime | None
    active: bool
    created_at: datetime


class PromoError(StorageError):
    """A redemption refused: `.reason` is unknown, off, expired, used_up or already."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(f"promo {code!r}: {reason}")
        self.reason = reason
        self.code = code


def _insert_new(conn: AsyncConnection, table: sa.Table, column: sa.Column, values: dict) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).values(**values).on_conflict_do_nothing().returning(column)


def _promo_from(row: Any) -> Promo:
    return Promo(code=row.code, credits=int(row.credits), max_uses=int(row.max_uses),
                 used=int(row.used), expires_at=to_utc(row.expires_at), active=bool(row.active),
                 created_at=to_utc(row.created_at))  # type: ignore[arg-type]


class ReferralRepository(MoneyRepository):
    # -- hooks called inside MoneyRepository's transactions ------------------------------------

    @staticmethod
    def _plain_signup(start_payload: str | None, rules: SignupRules | None) -> bool:
        """Whether _on_signup would read, write and decide nothing for this signup: no ref_ or
        promo_ link, and no rule that could withhold the bonus."""
        return (inviter_of(start_payload) is None and promo_of(start_payload) is None
                and (rules is None or (not rules.invited_only and rules.daily_cap <= 0)))

    async def _on_signup(self, conn: AsyncConnection, user_id: int, start_payload: str | None,
                         rules: SignupRules | None, now: datetime) -> bool:
        """A new user: tie them to their inviter (a ref_ link of an existing other user) and
        say whether the signup bonus may be paid under `rules`."""
        valid = False
        inviter = inviter_of(start_payload)
        if inviter is not None and inviter != user_id:
            exists = await conn.scalar(sa.select(users.c.id).where(users.c.id == inviter))
            if exists is not None:
                await conn.execute(sa.insert(referrals).values(
                    friend_id=user_id, inviter_id=inviter, created_at=now))
                valid = True
        code = promo_of(start_payload)
        if code is not None:
            valid = await conn.scalar(sa.select(promo_codes.c.code).where(
                promo_codes.c.code == code, promo_codes.c.active.is_(True),
                sa.or_(promo_codes.c.expires_at.is_(None), promo_codes.c.expires_at > now),
            )) is not None
        if rules is None:
            return True
        if rules.invited_only and not valid:
            return False
        if rules.daily_cap > 0:
            return await self._take_counter(conn, utc_day(now), SIGNUP_COUNTER, rules.daily_cap)
        return True

    async def _on_purchase(self, conn: AsyncConnection, user_id: int, charge_id: str,
                           credits: int, terms: ReferralTerms | None, now: datetime) -> None:
        """A purchase was just credited (once): the friend's first pays both bonuses, each pays
        the inviter's share."""
        ref = (await conn.execute(
            sa.select(referrals.c.inviter_id).where(referrals.c.friend_id == user_id))).first()
        if ref is None:
            return
        inviter = int(ref.inviter_id)
        first = await conn.execute(
            sa.update(referrals)
            .where(referrals.c.friend_id == user_id, referrals.c.first_charge_id.is_(None))
            .values(first_charge_id=charge_id, first_paid_at=now))
        if terms is None:
            return
        if first.rowcount == 1 and terms.bonus > 0:
            await self._keyed_credit(conn, user_id, terms.bonus, "referral_bonus",
                                     f"ref:fb:{user_id}", charge_id, now)
            await self._keyed_credit(conn, inviter, terms.bonus, "referral_bonus",
                                     f"ref:ib:{user_id}", charge_id, now)
        share = credits * terms.share_percent // 100
        if share > 0:
            await self._keyed_credit(conn, inviter, share, "referral_share",
                                     f"ref:s:{_charge_key(charge_id)}", charge_id, now)

    async def _on_purchase_refund(self, conn: AsyncConnection, payment: Payment,
                                  now: datetime) -> None:
        """The purchase was refunded: take back its share and, if it paid the bonuses, both
        bonuses — each at most what the holder still has."""
        ref = (await conn.execute(
            sa.select(referrals.c.inviter_id, referrals.c.first_charge_id)
            .where(referrals.c.friend_id == payment.user_id))).first()
        if ref is None:
            return
        charge = payment.telegram_payment_charge_id
        inviter, friend = int(ref.inviter_id), payment.user_id
        taken = [(inviter, "referral_share", f"ref:s:{_charge_key(charge)}")]
        if ref.first_charge_id == charge:
            taken += [(inviter, "referral_bonus", f"ref:ib:{friend}"),
                      (friend, "referral_bonus", f"ref:fb:{friend}")]
        for holder, reason, key in taken:
            paid = await conn.scalar(sa.select(credit_ledger.c.delta)
                                     .where(credit_ledger.c.idempotency_key == key))
            if not paid or paid <= 0:
                continue
            back_key = key.replace(":s:", ":sr:").replace(":ib:", ":ibr:").replace(":fb:", ":fbr:")
            balance = int(await conn.scalar(
                sa.select(users.c.balance).where(users.c.id == holder).with_for_update()))
            amount = min(int(paid), balance)
            if await self._insert_keyed(conn, holder, -amount, reason, back_key, charge, now,
                                        note=None if amount == paid else f"partial: {amount} of {paid}"):
                await conn.execute(ADD_TO_BALANCE, {"uid": holder, "amount": -amount})

    # -- referrals -----------------------------------------------------------------------------

    async def referral_stats(self, inviter_id: int) -> ReferralStats:
        """Friends invited, friends who paid, and credits earned (bonuses and shares, less what
        refunds took back)."""
        check_id("inviter_id", inviter_id)
        r, c = referrals.c, credit_ledger.c
        async with self._read(snapshot=True) as conn:
            invited, paid = (await conn.execute(
                sa.select(sa.func.count(), sa.func.count(r.first_charge_id))
                .where(r.inviter_id == inviter_id))).one()
            earned = await conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(c.delta), 0)).where(
                    c.user_id == inviter_id,
                    c.reason.in_(("referral_bonus", "referral_share")),
                    sa.not_(c.idempotency_key.like("ref:fb%"))))
        return ReferralStats(int(invited), int(paid), int(earned or 0))

    async def inviter_for(self, friend_id: int) -> int | None:
        check_id("friend_id", friend_id)
        async with self._read() as conn:
            value = await conn.scalar(sa.select(referrals.c.inviter_id)
                                      .where(referrals.c.friend_id == friend_id))
        return int(value) if value is not None else None

    # -- promo codes ---------------------------------------------------------------------------

    async def create_promo(self, code: str, *, credits: int, max_uses: int,
                           expires_at: datetime | None, admin_id: int,
                           now: datetime | None = None) -> bool:
        """False when the code exists already (a replayed /promo_new, or a taken code)."""
        code = normalise_code(code) or ""
        check_text("code", code, max_length=MAX_CODE)
        check_amount("credits", credits)
        check_amount("max_uses", max_uses)
        check_id("admin_id", admin_id)
        now = to_utc(now) or utcnow()
        async with self._tx() as conn:
            statement = _insert_new(conn, promo_codes, promo_codes.c.code, dict(
                code=code, credits=credits, max_uses=max_uses, used=0,
                expires_at=to_utc(expires_at), active=True, created_by=admin_id, created_at=now))
            return (await conn.execute(statement)).first() is not None

    async def list_promos(self, limit: int = 30) -> list[Promo]:
        check_amount("limit", limit)
        async with self._read() as conn:
            rows = await conn.execute(sa.select(promo_codes)
                                      .order_by(promo_codes.c.created_at.desc(), promo_codes.c.code)
                                      .limit(limit))
            return [_promo_from(r) for r in rows]

    async def get_promo(self, code: str) -> Promo | None:
        code = normalise_code(code)
        if code is None:
            return None
        async with self._read() as conn:
            row = (await conn.execute(sa.select(promo_codes)
                                      .where(promo_codes.c.code == code))).first()
        return _promo_from(row) if row else None

    async def set_promo_active(self, code: str, active: bool) -> bool:
        """False for an unknown code."""
        code = normalise_code(code)
        if code is None:
            return False
        async with self._tx() as conn:
            result = await conn.execute(sa.update(promo_codes).where(promo_codes.c.code == code)
                                        .values(active=bool(active)))
            return result.rowcount == 1

    async def redeem_promo(self, code: str, user_id: int, *, now: datetime | None = None) -> int:
        """Credit the code's credits to the user once; returns them. PromoError otherwise
        (nothing written). The (code, user) row is the once-per-user rule and the conditional
        UPDATE of `used` the total: a racing redemption waits on the code's row and re-checks."""
        check_id("user_id", user_id)
        normal = normalise_code(code)
        if normal is None:
            raise PromoError("unknown", str(code)[:MAX_CODE])
        now = to_utc(now) or utcnow()
        p = promo_codes.c
        async with self._tx() as conn:
            await self._lock_user(conn, user_id)
            row = (await conn.execute(sa.select(promo_codes).where(p.code == normal))).first()
            if row is None:
                raise PromoError("unknown", normal)
            promo = _promo_from(row)
            taken = (await conn.execute(_insert_new(
                conn, promo_redemptions, promo_redemptions.c.code,
                dict(code=normal, user_id=user_id, credits=promo.credits, created_at=now)))).first()
            if taken is None:
                raise PromoError("already", normal)
            counted = await conn.execute(
                sa.update(promo_codes)
                .where(p.code == normal, p.active.is_(True), p.used < p.max_uses,
                       sa.or_(p.expires_at.is_(None), p.expires_at > now))
                .values(used=p.used + 1))
            if counted.rowcount != 1:  # raising rolls the redemption row back too
                fresh = _promo_from((await conn.execute(
                    sa.select(promo_codes).where(p.code == normal))).one())
                reason = ("off" if not fresh.active else
                          "expired" if fresh.expires_at is not None and fresh.expires_at <= now
                          else "used_up")
                raise PromoError(reason, normal)
            await self._keyed_credit(conn, user_id, promo.credits, "promo",
                                     f"promo:{normal}:{user_id}", None, now)
            return promo.credits

    # -- the daily free allowance --------------------------------------------------------------

    async def daily_free_left(self, user_id: int, allowance: int, *,
                              now: datetime | None = None) -> int:
        check_id("user_id", user_id)
        if allowance <= 0:
            return 0
        now = to_utc(now) or utcnow()
        async with self._read() as conn:
            used = await conn.scalar(
                sa.select(sa.func.count()).select_from(daily_free_uses)
                .where(daily_free_uses.c.user_id == user_id,
                       daily_free_uses.c.day == utc_day(now)))
        return max(0, allowance - int(used or 0))

    async def _take_daily_free(self, conn: AsyncConnection, user_id: int, allowance: int,
                               now: datetime) -> int | None:
        """The first free slot of today (the caller holds the user's row lock), else None."""
        used = set((await conn.execute(
            sa.select(daily_free_uses.c.slot).where(daily_free_uses.c.user_id == user_id,
                                                    daily_free_uses.c.day == utc_day(now))
        )).scalars())
        return next((slot for slot in range(allowance) if slot not in used), None)

    async def _record_daily_free(self, conn: AsyncConnection, user_id: int, slot: int,
                                 generation_id: int, now: datetime) -> None:
        # A plain INSERT: the (user, day, slot) key makes a second use of a slot fail the
        # whole start, should anything ever get past the user's row lock.
        await conn.execute(sa.insert(daily_free_uses).values(
            user_id=user_id, day=utc_day(now), slot=slot, generation_id=generation_id,
            created_at=now))

    # -- helpers -------------------------------------------------------------------------------

    async def _take_counter(self, conn: AsyncConnection, day: str, name: str, cap: int) -> bool:
        """count + 1 for (day, name) unless it reached `cap`: one conditional UPDATE, so racing
        transactions queue on the row and re-check."""
        await conn.execute(_insert_new(conn, daily_counters, daily_counters.c.day,
                                       dict(day=day, name=name, count=0)))
        d = daily_counters.c
        result = await conn.execute(sa.update(daily_counters)
                                    .where(d.day == day, d.name == name, d.count < cap)
                                    .values(count=d.count + 1))
        return result.rowcount == 1

    async def _insert_keyed(self, conn: AsyncConnection, user_id: int, delta: int, reason: str,
                            key: str, charge_id: str | None, now: datetime, *,
                            note: str | None = None) -> bool:
        return await self._insert_once(conn, credit_ledger, dict(
            user_id=user_id, delta=delta, reason=reason, payment_charge_id=charge_id,
            idempotency_key=key, note=note, created_at=now))

    async def _keyed_credit(self, conn: AsyncConnection, user_id: int, amount: int, reason: str,
                            key: str, charge_id: str | None, now: datetime) -> bool:
        """The keyed ledger row first (its unique key decides "already done"), then the
        balance."""
        if not await self._insert_keyed(conn, user_id, amount, reason, key, charge_id, now):
            return False
        await conn.execute(ADD_TO_BALANCE, {"uid": user_id, "amount": amount})
        return True
