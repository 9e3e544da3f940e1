"""Payment reconciliation: credit every Stars payment Telegram has but our database does not.

The successful_payment update is the only moment the handler credits a payment; if the database
is down then (after the handler's short retries) the user has paid and got nothing. Telegram's
getStarTransactions is the record of what was actually paid, so this pass reads it and credits
each incoming invoice payment whose charge id has no `payments` row — through the same
AccountService.credit_payment (and its payload parser) the handler uses, so a payment is credited
once whichever path gets there first. Payments refunded in Telegram are skipped.

getStarTransactions is documented as chronological (oldest first) with offset paging; the pass
finds the newest page by probing and walks back until the lookback window ends, and also copes
with newest-first answers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.types import User as TgUser

from bot.logging import kv
from bot.services.accounts import AccountService, PaymentResult
from storage.models import User

log = logging.getLogger("bot.reconcile")

PAGE = 100  # Telegram's maximum


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Paid:
    """An incoming invoice payment as Telegram recorded it."""

    charge_id: str
    user: TgUser
    stars: int
    payload: str
    date: datetime


# (the Telegram user who paid, their storage row, what crediting did)
Notify = Callable[[TgUser, User, PaymentResult], Awaitable[None]]


class PaymentReconciler:
    def __init__(
        self, bot: Bot, accounts: AccountService, *, notify: Notify | None = None,
        clock: Callable[[], datetime] = _utcnow, grace: timedelta = timedelta(seconds=60),
        lookback: timedelta = timedelta(days=30), max_pages: int = 200,
    ) -> None:
        # `grace`: a payment this recent is probably being credited by its handler right now;
        # leaving it alone avoids two "payment received" messages for one payment.
        self._bot = bot
        self._accounts = accounts
        self._notify = notify
        self._clock = clock
        self._grace = grace
        self._lookback = lookback
        self._max_pages = max_pages

    async def run(self, *, now: datetime | None = None) -> int:
        """One pass; returns how many payments it credited."""
        now = now or self._clock()
        since = now - self._lookback
        transactions = await self._recent(since)
        refunded = {t.id for t in transactions if _is_invoice(t.receiver)}
        credited = 0
        for t in transactions:
            paid = _paid(t)
            if (paid is None or paid.charge_id in refunded or paid.date < since
                    or paid.date > now - self._grace):
                continue
            if await self._accounts.get_payment(paid.charge_id) is not None:
                continue
            try:
                if await self._credit(paid):
                    credited += 1
            except Exception as exc:  # noqa: BLE001 - one bad payment must not stop the rest
                log.error(kv("reconciliation credit failed", user=paid.user.id,
                             error=type(exc).__name__))
        if credited:
            log.warning(kv("payments credited by reconciliation", count=credited))
        return credited

    async def _credit(self, paid: Paid) -> bool:
        if await self._accounts.get_user(paid.user.id) is None:
            # Paid but never registered (the registering update itself failed): register now.
            await self._accounts.register(
                paid.user.id, username=paid.user.username, first_name=paid.user.first_name,
                last_name=paid.user.last_name, language_code=paid.user.language_code)
        result = await self._accounts.credit_payment(
            user_id=paid.user.id, charge_id=paid.charge_id, payload=paid.payload,
            total_amount=paid.stars)
        if not result.credited:
            return False
        log.warning(kv("payment credited late", user=paid.user.id, credits=result.credits))
        if self._notify is not None:
            try:
                await self._notify(paid.user, await self._accounts.get_user(paid.user.id), result)
            except Exception as exc:  # noqa: BLE001 - credited; the balance screen shows it
                log.info(kv("late payment notice not sent", user=paid.user.id,
                            error=type(exc).__name__))
        return True

    async def _page(self, offset: int) -> list:
        answer = await self._bot.get_star_transactions(offset=offset, limit=PAGE)
        return list(answer.transactions or [])

    async def _recent(self, since: datetime) -> list:
        """Every transaction dated at or after `since` (and a few older ones)."""
        first = await self._page(0)
        if len(first) < PAGE:
            return first
        if _date(first[0]) >= _date(first[-1]):  # newest first: read forward until too old
            out, offset, page = list(first), PAGE, first
            while len(page) == PAGE and _date(page[-1]) >= since and offset // PAGE < self._max_pages:
                page = await self._page(offset)
                out += page
                offset += PAGE
            return out
        # Oldest first: find the total by probing (doubling, then bisecting the offset of the
        # last full page), then read pages backwards from the end until the window is covered.
        lo, hi = 0, PAGE  # the page at lo is full; the page at hi is not (once probed)
        while len(await self._page(hi)) == PAGE:
            lo, hi = hi, hi * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if len(await self._page(mid)) == PAGE:
                lo = mid
            else:
                hi = mid
        end, out = lo + PAGE, []  # end == the number of transactions
        for _ in range(self._max_pages):
            start = max(0, end - PAGE)
            page = (await self._page(start))[: end - start]
            out = page + out
            if start == 0 or not page or _date(page[0]) < since:
                break
            end = start
        return out


def _date(t: Any) -> datetime:
    d = t.date
    if isinstance(d, datetime):
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(d), UTC)


def _is_invoice(partner: Any) -> bool:
    return (partner is not None and getattr(partner, "type", None) == "user"
            and getattr(partner, "transaction_type", None) == "invoice_payment")


def _paid(t: Any) -> Paid | None:
    source = t.source
    if not _is_invoice(source) or source.user is None or not t.id or int(t.amount or 0) <= 0:
        return None
    return Paid(charge_id=t.id, user=source.user, stars=int(t.amount),
                payload=source.invoice_payload or "", date=_date(t))
