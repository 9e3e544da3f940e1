"""The update inbox's SQL on SQLite and Postgres: dedupe by update_id, claims per chat with a
lease (never one chat in two owners), batched marks, release, pruning; and the admin money
commands keyed by their request (one ledger row however often the update comes)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from storage.errors import DuplicateError

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _row(update_id: int, chat: int | None) -> tuple[int, int | None, str]:
    return update_id, chat, f'{{"update_id": {update_id}}}'


async def test_a_redelivered_update_is_stored_once(repo):
    assert await repo.inbox_add([_row(1, 10), _row(2, 10)]) == 2
    assert await repo.inbox_add([_row(2, 10), _row(3, 11)]) == 1
    # The same update in one batch, and the same batch from two requests at once.
    results = await asyncio.gather(*(repo.inbox_add([_row(4, 12), _row(4, 12)]) for _ in range(5)))
    assert sum(results) == 1
    assert await repo.inbox_unhandled() == 4
    claimed = await repo.inbox_claim(owner="a", lease_seconds=30, limit=100)
    assert [u.update_id for u in claimed] == [1, 2, 3, 4]
    assert claimed[0].payload == '{"update_id": 1}' and claimed[0].attempts == 1


async def test_a_chat_held_by_one_owner_is_skipped_by_another(repo):
    await repo.inbox_add([_row(1, 10), _row(2, 11)], now=T0)
    first = await repo.inbox_claim(owner="a", lease_seconds=30, limit=1, now=T0)
    assert [u.update_id for u in first] == [1]
    # Chat 10 gets a new update while "a" holds its first: "b" must not take it, "a" may.
    await repo.inbox_add([_row(3, 10), _row(4, None), _row(5, None)], now=T0)
    other = await repo.inbox_claim(owner="b", lease_seconds=30, limit=10, now=T0)
    assert [u.update_id for u in other] == [2, 4, 5]  # chat 11 and the chat-less ones
    mine = await repo.inbox_claim(owner="a", lease_seconds=30, limit=10, now=T0)
    assert [u.update_id for u in mine] == [3]
    # Once "a" marked chat 10's updates handled, its next update is anyone's.
    assert await repo.inbox_mark_handled([1, 3], now=T0) == 2
    assert await repo.inbox_mark_handled([1], now=T0) == 0  # marks are idempotent
    await repo.inbox_add([_row(6, 10)], now=T0)
    assert [u.update_id for u in await repo.inbox_claim(owner="b", lease_seconds=30, limit=10,
                                                         now=T0)] == [6]


async def test_a_dead_owners_updates_come_back_after_the_lease_in_order(repo):
    await repo.inbox_add([_row(1, 10), _row(2, 10)], now=T0)
    assert len(await repo.inbox_claim(owner="dead", lease_seconds=5, limit=10, now=T0)) == 2
    assert await repo.inbox_claim(owner="b", lease_seconds=5, limit=10,
                                  now=T0 + timedelta(seconds=4)) == []
    again = await repo.inbox_claim(owner="b", lease_seconds=5, limit=10,
                                   now=T0 + timedelta(seconds=6))
    assert [(u.update_id, u.attempts) for u in again] == [(1, 2), (2, 2)]


async def test_renew_keeps_and_release_hands_back(repo):
    await repo.inbox_add([_row(1, 10), _row(2, 11)], now=T0)
    await repo.inbox_claim(owner="a", lease_seconds=5, limit=10, now=T0)
    assert await repo.inbox_renew(owner="a", lease_seconds=5, now=T0 + timedelta(seconds=4)) == 2
    assert await repo.inbox_claim(owner="b", lease_seconds=5, limit=10,
                                  now=T0 + timedelta(seconds=6)) == []
    await repo.inbox_mark_handled([1])
    assert await repo.inbox_release(owner="a") == 1  # only the unhandled one
    assert [u.update_id for u in await repo.inbox_claim(owner="b", lease_seconds=5,
                                                         limit=10)] == [2]


async def test_prune_removes_only_old_handled_updates(repo):
    await repo.inbox_add([_row(1, 10), _row(2, 11), _row(3, 12)], now=T0)
    await repo.inbox_mark_handled([1], now=T0)
    await repo.inbox_mark_handled([2], now=T0 + timedelta(hours=23))
    assert await repo.inbox_prune(handled_before=T0 + timedelta(hours=1)) == 1
    assert await repo.inbox_add([_row(2, 11)]) == 0  # still deduplicated
    assert await repo.inbox_add([_row(1, 10)]) == 1  # pruned: Telegram stopped retrying long ago
    assert await repo.inbox_unhandled() == 2  # 3 and the re-added 1


async def test_concurrent_claimers_never_share_a_chat(repo):
    """Many owners claiming at once (each claim on its own connection): every chat's updates
    all go to one owner per round, in update_id order."""
    chats = 12
    await repo.inbox_add([_row(i, i % chats) for i in range(1, 121)], now=T0)
    got: dict[str, list] = {}

    async def claim(owner: str) -> None:
        got[owner] = await repo.inbox_claim(owner=owner, lease_seconds=30, limit=40, now=T0)

    await asyncio.gather(*(claim(f"o{i}") for i in range(6)))
    owners_of: dict[int, set[str]] = defaultdict(set)
    for owner, rows in got.items():
        ids = [u.update_id for u in rows]
        assert ids == sorted(ids)
        for u in rows:
            owners_of[u.chat_key].add(owner)
    assert all(len(owners) == 1 for owners in owners_of.values()), dict(owners_of)
    assert sum(len(rows) for rows in got.values()) >= 40


# -- admin money keyed by the request -------------------------------------------------------

async def _user(repo, user_id: int = 5, bonus: int = 10) -> None:
    await repo.register_user(user_id, username=None, first_name="U", last_name=None,
                             language="en", signup_bonus=bonus)


async def test_the_same_admin_credit_twice_moves_the_balance_once(repo):
    await _user(repo)
    assert await repo.admin_adjust(5, 7, admin_id=1, idempotency_key="credit:1:42") == 17
    with pytest.raises(DuplicateError):
        await repo.admin_adjust(5, 7, admin_id=1, idempotency_key="credit:1:42")
    assert (await repo.get_user(5)).balance == 17
    rows = [e for e in await repo.ledger(5) if e.reason == "admin_adjust"]
    assert [(e.delta, e.idempotency_key) for e in rows] == [(7, "credit:1:42")]
    # Another message is another change; unkeyed calls keep working as before.
    assert await repo.admin_adjust(5, -2, admin_id=1, idempotency_key="credit:1:43") == 15
    assert await repo.admin_adjust(5, 1, admin_id=1) == 16
    assert await repo.admin_adjust(5, 1, admin_id=1) == 17
    assert await repo.ledger_check() == []


async def test_concurrent_repeats_of_one_admin_credit_write_one_row(repo):
    await _user(repo)

    async def once():
        try:
            return await repo.admin_adjust(5, 7, admin_id=1, idempotency_key="credit:1:50")
        except DuplicateError:
            return None

    results = await asyncio.gather(*(once() for _ in range(6)))
    assert [r for r in results if r is not None] == [17]
    assert (await repo.get_user(5)).balance == 17
    assert await repo.ledger_check() == []


async def test_a_replayed_set_does_not_undo_a_later_change(repo):
    await _user(repo)
    assert await repo.admin_set(5, 30, admin_id=1, idempotency_key="credit:1:60") == 30
    assert await repo.admin_adjust(5, 5, admin_id=1, idempotency_key="credit:1:61") == 35
    with pytest.raises(DuplicateError):
        await repo.admin_set(5, 30, admin_id=1, idempotency_key="credit:1:60")
    # A keyed "=N" that changes nothing is remembered too.
    assert await repo.admin_set(5, 35, admin_id=1, idempotency_key="credit:1:62") == 35
    assert await repo.admin_adjust(5, 1, admin_id=1) == 36
    with pytest.raises(DuplicateError):
        await repo.admin_set(5, 35, admin_id=1, idempotency_key="credit:1:62")
    assert (await repo.get_user(5)).balance == 36
    assert await repo.ledger_check() == []


async def test_a_large_batch_counts_only_its_new_rows(repo):
    # Past one INSERT's worth (SQLite: chunks of at most 512; Postgres: insertmanyvalues pages).
    assert await repo.inbox_add([_row(i, i % 7) for i in range(1, 1201)]) == 1200
    assert await repo.inbox_add([_row(i, None) for i in range(1101, 1701)]) == 500
    assert await repo.inbox_unhandled() == 1700
