"""bot/fsm_redis.py on a real Redis: one script takes a chat's lock with its FSM, one writes
the update's changes and releases it (nothing when the lock ran out); one update of a chat at a
time; outside a held lock every call is aiogram's plain RedisStorage."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from redis.exceptions import LockNotOwnedError

from bot.fsm_redis import KiebotRedisIsolation, KiebotRedisStorage

pytestmark = pytest.mark.redis


@pytest.fixture
async def storage(redis_url):
    storage = KiebotRedisStorage.from_url(redis_url)
    plain = RedisStorage.from_url(redis_url)  # what aiogram itself reads and writes
    storage.plain = plain
    # Redis is shared (and aiogram's keys name no bot): chats of our own, fsm:<chat>:<chat>:…
    storage.chat = 8_000_000_000 + secrets.randbelow(10**9) * 2
    yield storage
    for chat in (storage.chat, storage.chat + 1):
        await storage.redis.delete(*(f"fsm:{chat}:{chat}:{part}" for part in ("state", "data", "lock")))
    await plain.close()
    await storage.close()


def key_of(storage, second: bool = False) -> StorageKey:
    chat = storage.chat + second
    return StorageKey(bot_id=1, chat_id=chat, user_id=chat)


class Commands:
    """Counts what reaches Redis: pipelines (one round trip each) and single commands."""

    def __init__(self, storage, monkeypatch):
        self.pipelines: list[list[str]] = []
        self.single: list[str] = []
        redis = storage.redis
        real_pipeline, real_execute = redis.pipeline, redis.execute_command

        def pipeline(*args, **kwargs):
            pipe = real_pipeline(*args, **kwargs)
            real_pipe_execute = pipe.execute

            async def execute(*a, **kw):
                self.pipelines.append([str(c[0][0]) for c in pipe.command_stack])
                return await real_pipe_execute(*a, **kw)

            pipe.execute = execute
            return pipe

        async def execute_command(*args, **kwargs):
            self.single.append(str(args[0]))
            return await real_execute(*args, **kwargs)

        monkeypatch.setattr(redis, "pipeline", pipeline)
        monkeypatch.setattr(redis, "execute_command", execute_command)


async def warm(storage, isolation) -> None:
    """One update on the second chat: both scripts are in Redis's cache (SCRIPT LOAD) after it."""
    async with isolation.lock(key_of(storage, True)):
        pass


async def test_an_update_costs_two_round_trips_and_lands_its_changes_at_release(
        storage, monkeypatch):
    key = key_of(storage)
    await storage.plain.set_state(key, "Flow:prompt")
    await storage.plain.set_data(key, {"draft": {"model": "m"}, "n": 1})
    isolation = storage.create_isolation(lock_kwargs={"timeout": 30})
    await warm(storage, isolation)
    seen = Commands(storage, monkeypatch)
    async with isolation.lock(key):
        assert await storage.get_state(key) == "Flow:prompt"
        data = await storage.get_data(key)
        assert data == {"draft": {"model": "m"}, "n": 1}
        data["n"] = 99  # a handler's own copy: not the stored data
        assert (await storage.get_data(key))["n"] == 1
        await storage.set_state(key, State("done", group_name="Flow"))
        await storage.update_data(key, {"n": 2})
        assert await storage.get_state(key) == "Flow:done"
        assert await storage.get_data(key) == {"draft": {"model": "m"}, "n": 2}
        assert await storage.plain.get_data(key) == {"draft": {"model": "m"}, "n": 1}
    assert seen.pipelines == []
    assert seen.single == ["EVALSHA", "EVALSHA"]
    assert await storage.plain.get_state(key) == "Flow:done"
    assert await storage.plain.get_data(key) == {"draft": {"model": "m"}, "n": 2}
    assert not await storage.redis.exists(f"fsm:{storage.chat}:{storage.chat}:lock")


async def test_cleared_state_and_data_are_deleted_and_untouched_ones_not_written(
        storage, monkeypatch):
    key, other = key_of(storage), key_of(storage, True)
    await storage.plain.set_state(key, "Flow:prompt")
    await storage.plain.set_data(key, {"a": 1})
    other_state = f"fsm:{other.chat_id}:{other.chat_id}:state"
    await storage.plain.set_state(other, "Flow:kept")
    await storage.redis.expire(other_state, 1000)  # a rewrite (SET without EX) would drop it
    isolation = storage.create_isolation()
    await warm(storage, isolation)
    seen = Commands(storage, monkeypatch)
    async with isolation.lock(key):
        await storage.set_state(key, None)
        await storage.set_data(key, {})
    async with isolation.lock(other):  # an update that reads only
        assert await storage.get_state(other) == "Flow:kept"
        assert await storage.get_data(other) == {}
    assert seen.pipelines == [] and seen.single == ["EVALSHA"] * 4
    assert await storage.plain.get_state(key) is None and await storage.plain.get_data(key) == {}
    assert not await storage.redis.exists(f"fsm:{key.chat_id}:{key.chat_id}:data")
    assert 0 < await storage.redis.ttl(other_state) <= 1000
    with pytest.raises(Exception, match="dict"):
        async with isolation.lock(key):
            await storage.set_data(key, ["not", "a", "dict"])


async def test_changes_are_written_with_the_storages_ttls(redis_url):
    storage = KiebotRedisStorage.from_url(redis_url, state_ttl=timedelta(seconds=300), data_ttl=200)
    key = StorageKey(bot_id=1, chat_id=8_100_000_000 + secrets.randbelow(10**9), user_id=1)
    try:
        async with storage.create_isolation().lock(key):
            await storage.set_state(key, "Flow:prompt")
            await storage.set_data(key, {"n": 1})
        names = storage.key_builder
        assert 290 <= await storage.redis.ttl(names.build(key, "state")) <= 300
        assert 190 <= await storage.redis.ttl(names.build(key, "data")) <= 200
        assert await storage.get_data(key) == {"n": 1}
    finally:
        await storage.redis.delete(*(storage.key_builder.build(key, p) for p in ("state", "data", "lock")))
        await storage.close()


async def test_one_update_of_a_chat_at_a_time_and_the_next_sees_the_first(storage, redis_url):
    key = key_of(storage)
    isolation = storage.create_isolation(lock_kwargs={"timeout": 30, "sleep": 0.01})
    order = []

    async def update(n: int) -> None:
        async with isolation.lock(key):
            data = await storage.get_data(key)
            order.append(("in", n, data.get("count", 0)))
            await asyncio.sleep(0.05)
            await storage.set_data(key, {"count": data.get("count", 0) + 1})
            order.append(("out", n))

    # Different processes would each have a storage: a second instance on the same Redis.
    second = KiebotRedisStorage.from_url(redis_url)
    try:
        second_isolation = second.create_isolation(lock_kwargs={"timeout": 30, "sleep": 0.01})

        async def update_elsewhere(n: int) -> None:
            async with second_isolation.lock(key):
                data = await second.get_data(key)
                order.append(("in", n, data.get("count", 0)))
                await asyncio.sleep(0.05)
                await second.set_data(key, {"count": data.get("count", 0) + 1})
                order.append(("out", n))

        await asyncio.gather(update(1), update_elsewhere(2), update(3), update_elsewhere(4))
    finally:
        await second.close()
    assert await storage.plain.get_data(key) == {"count": 4}
    for i in range(0, 8, 2):  # never two inside at once, each saw all before it
        assert order[i][0] == "in" and order[i + 1] == ("out", order[i][1])
        assert order[i][2] == i // 2


async def test_outside_a_held_lock_calls_go_to_redis(storage):
    key = key_of(storage)
    await storage.set_state(key, "S:one")
    await storage.set_data(key, {"x": 1})
    assert await storage.plain.get_state(key) == "S:one"
    assert await storage.plain.get_data(key) == {"x": 1}
    await storage.plain.set_data(key, {"x": 2})
    assert await storage.get_data(key) == {"x": 2}
    assert isinstance(storage.create_isolation(), KiebotRedisIsolation)


async def test_a_lock_that_ran_out_is_not_released_over_its_new_holder(storage):
    key = key_of(storage)
    await storage.plain.set_state(key, "Flow:theirs")
    isolation = storage.create_isolation(lock_kwargs={"timeout": 0.2})
    lock_key = f"fsm:{storage.chat}:{storage.chat}:lock"
    with pytest.raises(LockNotOwnedError):
        async with isolation.lock(key):
            await storage.set_state(key, "Flow:late")
            await asyncio.sleep(0.3)  # ran out; someone else takes it
            assert await storage.redis.set(lock_key, "theirs", nx=True, px=5000)
    assert await storage.redis.get(lock_key) == b"theirs"
    assert await storage.plain.get_state(key) == "Flow:theirs"  # the late update wrote nothing
