"""ReferralService: invite links and their statistics, promo codes (admins create, list and
switch them off; users redeem them). The money rules live in the repository
(storage/repository/_referrals.py), each in the transaction of what causes it; this is the part
handlers talk to, testable without Telegram."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.repository._referrals import (
    PROMO_PREFIX,
    REF_PREFIX,
    Promo,
    PromoError,
    ReferralStats,
    inviter_of,
    normalise_code,
    promo_of,
    referral_code,
)
from storage.repository._base import utcnow

MAX_PROMO_CREDITS = 1_000_000
MAX_PROMO_USES = 1_000_000
MAX_PROMO_DAYS = 3650

__all__ = ["PromoError", "PromoUsage", "ReferralService", "inviter_of", "promo_of"]


class PromoUsage(ValueError):
    """An admin's /promo_new arguments are not CODE CREDITS USES [DAYS]."""


@dataclass(frozen=True)
class NewPromo:
    code: str
    credits: int
    uses: int
    expires_at: datetime | None
    created: bool  # False: the code exists already (nothing changed)


class ReferralService:
    def __init__(self, repository: Any, *, bonus: int, share_percent: int,
                 clock=utcnow) -> None:
        self._repo = repository
        self.bonus = bonus
        self.share_percent = share_percent
        self._clock = clock

    # referrals ---------------------------------------------------------------------------------
    @staticmethod
    def link(bot_username: str, user_id: int) -> str:
        return f"https://t.me/{bot_username}?start={REF_PREFIX}{referral_code(user_id)}"

    async def stats(self, user_id: int) -> ReferralStats:
        return await self._repo.referral_stats(user_id)

    async def inviter_for(self, user_id: int) -> int | None:
        return await self._repo.inviter_for(user_id)

    # promo codes -------------------------------------------------------------------------------
    @staticmethod
    def promo_link(bot_username: str, code: str) -> str:
        return f"https://t.me/{bot_username}?start={PROMO_PREFIX}{code}"

    async def redeem(self, code: str, user_id: int) -> int:
        """The credits added; PromoError (reason unknown/off/expired/used_up/already)."""
        return await self._repo.redeem_promo(code, user_id, now=self._clock())

    async def create(self, args: str, *, admin_id: int) -> NewPromo:
        """`args`: CODE CREDITS USES [DAYS]; PromoUsage when they are not."""
        parts = (args or "").split()
        if len(parts) not in (3, 4) or not all(p.isdigit() and len(p) <= 9 for p in parts[1:]):
            raise PromoUsage(args)
        code = normalise_code(parts[0])
        credits, uses = int(parts[1]), int(parts[2])
        days = int(parts[3]) if len(parts) == 4 else None
        if (code is None or not 0 < credits <= MAX_PROMO_CREDITS or not 0 < uses <= MAX_PROMO_USES
                or (days is not None and not 0 < days <= MAX_PROMO_DAYS)):
            raise PromoUsage(args)
        now = self._clock()
        expires = now + timedelta(days=days) if days else None
        created = await self._repo.create_promo(code, credits=credits, max_uses=uses,
                                                expires_at=expires, admin_id=admin_id, now=now)
        return NewPromo(code, credits, uses, expires, created)

    async def promos(self) -> list[Promo]:
        return await self._repo.list_promos()

    async def set_active(self, code: str, active: bool) -> bool:
        return await self._repo.set_promo_active(code, active)

    def expired(self, promo: Promo) -> bool:
        return promo.expires_at is not None and promo.expires_at <= self._clock()
