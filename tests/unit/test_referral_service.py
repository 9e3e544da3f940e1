"""ReferralService's parsing of admins' /promo_new arguments and the links it builds (no database:
a recording stand-in for the repository)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.services.referrals import PromoUsage, ReferralService, inviter_of, promo_of

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Repo:
    def __init__(self) -> None:
        self.created: list[tuple] = []

    async def create_promo(self, code, *, credits, max_uses, expires_at, admin_id, now):
        self.created.append((code, credits, max_uses, expires_at, admin_id))
        return len(self.created) == 1


def service() -> tuple[ReferralService, Repo]:
    repo = Repo()
    return ReferralService(repo, bonus=25, share_percent=5, clock=lambda: NOW), repo


async def test_promo_new_arguments():
    referrals, repo = service()
    made = await referrals.create("spring-26 50 100 14", admin_id=7)
    assert (made.code, made.credits, made.uses, made.created) == ("SPRING-26", 50, 100, True)
    assert made.expires_at == NOW + timedelta(days=14)
    again = await referrals.create("SPRING-26 50 100", admin_id=7)
    assert again.created is False and again.expires_at is None
    assert repo.created[0] == ("SPRING-26", 50, 100, NOW + timedelta(days=14), 7)


@pytest.mark.parametrize("args", ["", "CODE", "CODE 10", "CODE ten 5", "CODE 10 0", "CODE 0 5",
                                  "CODE 10 5 0", "CODE 10 5 1 2", "BAD!CODE 10 5", "X" * 33 + " 1 1",
                                  "CODE -1 5", "CODE 10 5 99999", "CODE 1000000000 5"])
async def test_bad_promo_new_arguments_are_refused_before_the_database(args):
    referrals, repo = service()
    with pytest.raises(PromoUsage):
        await referrals.create(args, admin_id=7)
    assert repo.created == []


def test_links_round_trip():
    link = ReferralService.link("kie_bot", 123456789)
    payload = link.split("?start=")[1]
    assert link.startswith("https://t.me/kie_bot?start=ref_") and inviter_of(payload) == 123456789
    assert promo_of(ReferralService.promo_link("kie_bot", "SPRING").split("?start=")[1]) == "SPRING"
