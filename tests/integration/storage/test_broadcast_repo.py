"""Broadcasts in storage (SQLite and Postgres): segments, recipients materialised once, rows
claimed pending → sending exactly once under races, a takeover never resending what may have
gone out, the lease, the once-only report; support messages keyed by the user's message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from storage.errors import InvalidFieldError
from storage.schema import broadcast_recipients, payments, users

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


async def _user(repo, user_id: int, *, language: str = "en", balance: int = 0) -> None:
    await repo.register_user(user_id, username=f"u{user_id}", first_name="Ann", last_name=None,
                             language=language, signup_bonus=balance)


async def _people(repo) -> None:
    """1: en, 10⭐, seen now; 2: ru, 100⭐, seen 10 days ago, paid; 3: ru, blocked; 4: en,
    banned; 5: en, paid but refunded."""
    for uid, lang, bal in ((1, "en", 10), (2, "ru", 100), (3, "ru", 500), (4, "en", 500),
                           (5, "en", 0)):
        await _user(repo, uid, language=lang, balance=bal)
    await repo.set_blocked(3, True)
    await repo.set_banned(4, True)
    async with repo.engine.begin() as conn:
        await conn.execute(sa.update(users).values(last_seen_at=NOW))
        await conn.execute(sa.update(users).where(users.c.id == 2)
                           .values(last_seen_at=NOW - timedelta(days=10)))
        await conn.execute(sa.insert(payments), [
            {"telegram_payment_charge_id": "c2", "user_id": 2, "stars": 50, "credits": 50,
             "created_at": NOW, "refunded_at": None},
            {"telegram_payment_charge_id": "c5", "user_id": 5, "stars": 50, "credits": 50,
             "created_at": NOW, "refunded_at": NOW}])


async def _draft(repo, segment="all", arg=None, **kw):
    return await repo.create_broadcast(admin_id=99, lang="en", kind="text", text="hello",
                                       segment=segment, segment_arg=arg, now=NOW, **kw)


async def test_segments_count_the_right_people(repo):
    await _people(repo)
    cases = [("all", None, {1, 2, 5}), ("active", 7, {1, 5}), ("active", 30, {1, 2, 5}),
             ("paying", None, {2}), ("balance", 50, {2}), ("balance", 0, {1, 2, 5}),
             ("lang", "ru", {2}), ("lang", "en", {1, 5})]
    for segment, arg, who in cases:
        assert await repo.count_segment(segment, arg, now=NOW) == len(who), (segment, arg)
        draft = await _draft(repo, segment, arg)
        assert await repo.start_broadcast(draft.id, card_message_id=7, now=NOW)
        assert set(await repo.broadcast_recipients_of(draft.id)) == who, (segment, arg)
        assert (await repo.get_broadcast(draft.id)).total == len(who)


async def test_bad_segments_and_messages_are_refused(repo):
    for segment, arg in (("everyone", None), ("active", 0), ("active", "7"), ("balance", -1),
                         ("lang", "de"), ("all", 5), ("active", True)):
        with pytest.raises(InvalidFieldError):
            await repo.count_segment(segment, arg)
    with pytest.raises(InvalidFieldError):
        await repo.create_broadcast(admin_id=1, lang="en", kind="text", text=" ", segment="all")
    with pytest.raises(InvalidFieldError):
        await repo.create_broadcast(admin_id=1, lang="en", kind="photo", text="x", photo=None,
                                    segment="all")
    with pytest.raises(InvalidFieldError):
        await repo.create_broadcast(admin_id=1, lang="en", kind="text", text="x",
                                    button_text="Go", segment="all")


async def test_start_materialises_recipients_once_under_races(repo):
    await _people(repo)
    draft = await _draft(repo)
    started = await asyncio.gather(*(repo.start_broadcast(draft.id, now=NOW) for _ in range(4)))
    assert sorted(started) == [False, False, False, True]
    assert await repo.broadcast_counts(draft.id) == {
        "pending": 3, "sending": 0, "sent": 0, "blocked": 0, "failed": 0, "unknown": 0}


async def test_rows_are_claimed_once_and_outcomes_marked(repo):
    await _people(repo)
    draft = await _draft(repo)
    await repo.start_broadcast(draft.id, now=NOW)
    claimed = await repo.claim_broadcast(owner="a", lease_seconds=30, now=NOW)
    assert claimed.id == draft.id and claimed.state == "running"
    # Another owner cannot take a live lease.
    assert await repo.claim_broadcast(owner="b", lease_seconds=30, now=NOW) is None
    assert await repo.claim_recipients(draft.id, owner="b", lease_seconds=30, limit=10,
                                       now=NOW) == ("lost", [])
    batches = await asyncio.gather(*(repo.claim_recipients(draft.id, owner="a", lease_seconds=30,
                                                           limit=2, now=NOW) for _ in range(3)))
    ids = [u for _, got in batches for u in got]
    assert sorted(ids) == [1, 2, 5]  # every row once, none twice
    assert not await repo.finish_broadcast(draft.id, owner="a", now=NOW)  # still sending
    await repo.mark_recipients(draft.id, [(1, "sent", None), (2, "blocked", None),
                                          (5, "failed", "bad_request")], now=NOW)
    assert (await repo.get_user(2)).blocked is True
    assert await repo.claim_recipients(draft.id, owner="a", lease_seconds=30, limit=10,
                                       now=NOW) == ("running", [])
    assert await repo.finish_broadcast(draft.id, owner="a", now=NOW)
    counts = await repo.broadcast_counts(draft.id)
    assert (counts["sent"], counts["blocked"], counts["failed"]) == (1, 1, 1)
    # Finished and unreported: claimed again for the report, which is marked once.
    again = await repo.claim_broadcast(owner="a", lease_seconds=30, now=NOW)
    assert again.state == "done"
    assert await repo.mark_broadcast_reported(draft.id, now=NOW)
    assert not await repo.mark_broadcast_reported(draft.id, now=NOW)
    assert await repo.claim_broadcast(owner="a", lease_seconds=30, now=NOW) is None


async def test_a_takeover_marks_rows_in_flight_unknown_and_never_resends_them(repo):
    await _people(repo)
    draft = await _draft(repo)
    await repo.start_broadcast(draft.id, now=NOW)
    await repo.claim_broadcast(owner="dead", lease_seconds=30, now=NOW)
    _, first = await repo.claim_recipients(draft.id, owner="dead", lease_seconds=30, limit=1,
                                           now=NOW)
    assert first == [1]
    # The owner dies with row 1 in "sending"; its lease runs out.
    later = NOW + timedelta(seconds=31)
    taken = await repo.claim_broadcast(owner="new", lease_seconds=30, now=later)
    assert taken is not None
    assert (await repo.broadcast_recipients_of(draft.id))[1] == "unknown"
    _, rest = await repo.claim_recipients(draft.id, owner="new", lease_seconds=30, limit=10,
                                          now=later)
    assert rest == [2, 5]
    # A pass handing a flood-refused row back: pending again, claimed again.
    await repo.mark_recipients(draft.id, [(2, "sent", None), (5, "pending", "flood")], now=later)
    assert (await repo.claim_recipients(draft.id, owner="new", lease_seconds=30, limit=10,
                                        now=later))[1] == [5]


async def test_pause_resume_cancel_and_release(repo):
    await _people(repo)
    draft = await _draft(repo)
    assert not await repo.set_broadcast_state(draft.id, from_states=("running",),
                                              to_state="paused")
    await repo.start_broadcast(draft.id, now=NOW)
    await repo.claim_broadcast(owner="a", lease_seconds=30, now=NOW)
    assert await repo.set_broadcast_state(draft.id, from_states=("running",), to_state="paused")
    assert await repo.claim_recipients(draft.id, owner="a", lease_seconds=30, limit=5,
                                       now=NOW) == ("paused", [])
    await repo.release_broadcast(draft.id, owner="a")
    # Paused: no worker has anything to do with it.
    assert await repo.claim_broadcast(owner="b", lease_seconds=30, now=NOW) is None
    assert await repo.set_broadcast_state(draft.id, from_states=("paused",), to_state="running")
    assert (await repo.claim_broadcast(owner="b", lease_seconds=30, now=NOW)).id == draft.id
    assert await repo.set_broadcast_state(draft.id, from_states=("running", "paused"),
                                          to_state="cancelled", now=NOW)
    cancelled = await repo.get_broadcast(draft.id)
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    assert await repo.claim_recipients(draft.id, owner="b", lease_seconds=30, limit=5,
                                       now=NOW) == ("cancelled", [])
    assert (await repo.broadcast_counts(draft.id))["pending"] == 3  # never sent
    # A cancelled draft (never started) needs no report.
    other = await _draft(repo)
    assert await repo.set_broadcast_state(other.id, from_states=("draft",), to_state="cancelled")
    assert (await repo.claim_broadcast(owner="b", lease_seconds=30, now=NOW)).id == draft.id


async def test_a_support_message_is_claimed_once_per_user_message(repo):
    await _user(repo, 301)
    ids = await asyncio.gather(*(repo.claim_support_message(301, "help", chat_id=301,
                                                            message_id=7) for _ in range(4)))
    [sid] = [i for i in ids if i is not None]
    assert ids.count(None) == 3
    assert await repo.claim_support_message(301, "help", chat_id=301, message_id=7) is None
    other = await repo.claim_support_message(301, "again", chat_id=301, message_id=8)
    assert other not in (None, sid)
    await repo.add_support_forwards(sid, [(1, 10), (2, 11)])
    assert await repo.support_for_forward(2, 11) == (sid, 301)
    # The old unkeyed path still stores messages (NULL keys never collide).
    a = await repo.add_support_message(301, "x", [])
    b = await repo.add_support_message(301, "x", [])
    assert a != b


async def test_recipient_rows_have_row_level_security_on_postgres(repo, is_pg):
    if not is_pg:
        pytest.skip("row-level security is a Postgres feature")
    async with repo.engine.connect() as conn:
        rows = await conn.execute(sa.text(
            "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN "
            "('broadcasts', 'broadcast_recipients')"))
        assert dict(rows.all()) == {"broadcasts": True, "broadcast_recipients": True}
    assert broadcast_recipients.name == "broadcast_recipients"
