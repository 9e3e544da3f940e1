"""Support messages and bans in storage (SQLite and Postgres): the ban flag, a support message
found from any admin's copy, an admin's reply recorded once under replays and races, and
row-level security on the new tables on Postgres (as migration 0007 asks)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from storage.errors import InvalidFieldError, UnknownUserError
from storage.schema import support_admin_messages


async def _user(repo, user_id: int) -> None:
    await repo.register_user(user_id, username=f"u{user_id}", first_name="Ann", last_name=None,
                             language="en", signup_bonus=0)


async def test_ban_and_unban(repo):
    await _user(repo, 101)
    assert (await repo.get_user(101)).banned is False
    assert await repo.set_banned(101, True) is True
    assert await repo.set_banned(101, True) is False  # already so
    assert (await repo.get_user(101)).banned is True
    assert (await repo.find_user_by_username("u101")).banned is True
    assert await repo.set_banned(101, False) is True
    assert (await repo.get_user(101)).banned is False
    with pytest.raises(UnknownUserError):
        await repo.set_banned(999, True)


async def test_a_support_message_is_found_from_each_admins_copy(repo):
    await _user(repo, 201)
    sid = await repo.add_support_message(201, "no ⭐ after paying", [(1, 10), (2, 10), (2, 11)])
    for admin_id, message_id in ((1, 10), (2, 10), (2, 11)):
        assert await repo.support_for_forward(admin_id, message_id) == (sid, 201)
    assert await repo.support_for_forward(1, 11) is None
    assert await repo.support_for_forward(3, 10) is None
    [row] = await repo.support_messages_of(201)
    assert (row["id"], row["text"]) == (sid, "no ⭐ after paying")


async def test_a_reply_is_recorded_once_under_replays_and_races(repo):
    await _user(repo, 301)
    sid = await repo.add_support_message(301, "help", [(1, 20)])
    results = await asyncio.gather(*(repo.record_support_reply(sid, 1, 21, "done")
                                     for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert await repo.record_support_reply(sid, 1, 21, "done") is False
    # A reply is not a copy: replying to the admin's own reply finds no user.
    assert await repo.support_for_forward(1, 21) is None
    async with repo.engine.connect() as conn:
        kinds = (await conn.execute(sa.select(support_admin_messages.c.kind)
                                    .order_by(support_admin_messages.c.message_id))).scalars()
        assert list(kinds) == ["forward", "reply"]


async def test_bad_input_is_refused_before_the_database(repo):
    await _user(repo, 401)
    with pytest.raises(InvalidFieldError):
        await repo.add_support_message(401, "x" * 5000, [(1, 1)])
    with pytest.raises(InvalidFieldError):
        await repo.add_support_message(401, "hi", [(1, "ten")])
    assert await repo.support_messages_of(401) == []


async def test_new_tables_have_row_level_security_on_postgres(engine, is_pg):
    if not is_pg:
        pytest.skip("row-level security is a Postgres feature")
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN "
            "('support_messages', 'support_admin_messages') ORDER BY relname"))).all()
    assert rows == [("support_admin_messages", True), ("support_messages", True)]
