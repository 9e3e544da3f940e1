"""The prompt helper's charge and refund ("✨ Improve" when the operator prices it).

Both are keyed ledger rows: the charge's `idempotency_key` is "assist:<key>", the refund's
"assist_refund:<key>", where <key> names one press of the button (bot/services/prompt_helper.py).
The ledger's unique index on idempotency_key makes a replayed or concurrent press charge once
and a failure refund once — decided by the database, not by a check in the application.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from storage.repository._base import check_amount, check_id, check_text, to_utc, utcnow
from storage.repository._money import MoneyRepository
from storage.repository._prepared import ADD_TO_BALANCE
from storage.schema import credit_ledger

KEY_LIMIT = 100  # + "assist_refund:" stays within the column's 128 characters


class AssistRepository(MoneyRepository):
    async def assist_charge(self, user_id: int, amount: int, *, key: str,
                            now: datetime | None = None) -> bool:
        """Take `amount` once for `key`: True when charged now, False when `key` was charged
        before (nothing changes). InsufficientBalanceError leaves no row behind."""
        check_id("user_id", user_id)
        check_amount("amount", amount)
        key = check_text("key", key, max_length=KEY_LIMIT)
        at = to_utc(now) or utcnow()
        async with self._tx() as conn:
            await self._lock_user(conn, user_id)
            if not await self._insert_once(conn, credit_ledger, dict(
                    user_id=user_id, delta=-amount, reason="assist", created_at=at,
                    idempotency_key=f"assist:{key}")):
                return False
            await self._debit(conn, user_id, amount)  # raises: the row rolls back with it
            return True

    async def assist_refund(self, user_id: int, *, key: str,
                            now: datetime | None = None) -> int:
        """Give back what `key` was charged, once: the amount refunded now, 0 when there was no
        charge or it was refunded before."""
        check_id("user_id", user_id)
        key = check_text("key", key, max_length=KEY_LIMIT)
        at = to_utc(now) or utcnow()
        async with self._tx() as conn:
            await self._lock_user(conn, user_id)
            charged = await conn.scalar(sa.select(credit_ledger.c.delta).where(
                credit_ledger.c.idempotency_key == f"assist:{key}",
                credit_ledger.c.user_id == user_id))
            if charged is None or charged >= 0:
                return 0
            amount = -int(charged)
            if not await self._insert_once(conn, credit_ledger, dict(
                    user_id=user_id, delta=amount, reason="assist_refund", created_at=at,
                    idempotency_key=f"assist_refund:{key}")):
                return 0
            await conn.execute(ADD_TO_BALANCE, {"uid": user_id, "amount": amount})
            return amount
