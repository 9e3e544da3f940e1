"""aiogram's Redis FSM storage and events isolation, with the round trips of one update cut to
two: one script takes the chat's lock and reads its state and data, one script writes what the
handlers changed and releases the lock.

aiogram's own pair costs an update five or six round trips (SET NX for the lock, GET state in
FSMContextMiddleware, GET data and SET/DEL for each change a handler makes, EVALSHA to release),
each a pooled-connection checkout and a socket write: the Postgres updates bench spent about a
tenth of the bot's CPU in them. Scripts rather than pipelines: one command each (redis-py's
pipeline machinery cost more CPU than the command), and the write happens only while the lock is
still ours, in the same atomic step as the release.

While this process holds a chat's lock (the isolation below, which FSMContextMiddleware takes
around every update of the chat), the chat's state and data are the copy read with the lock:
the handlers' reads are answered from it and their writes change it, and the changes are written
to Redis when the update is done, as the lock is released. Nobody else may change a chat's FSM
while its lock is held (that is what the lock is for), so the copy is exact, and the update's
changes land together: a process that dies mid-update leaves the chat's FSM as it was for the
replay (bot/inbox.py hands the update to the next claimer). A lock that ran out (an update past
its timeout) writes nothing and raises LockNotOwnedError, as redis-py's Lock does, so a late
update never overwrites the FSM of the chat's next one. Outside a held lock (a background task,
a test reading the storage) every call goes to Redis as aiogram's does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseEventIsolation, StateType, StorageKey
from aiogram.fsm.storage.redis import DEFAULT_REDIS_LOCK_KWARGS, RedisStorage
from redis.exceptions import LockNotOwnedError

# KEYS: lock, state, data; ARGV: token, lock timeout (ms). {1, state, data} once the lock is
# taken, {0} while another holder has it.
TAKE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return {1, redis.call('get', KEYS[2]), redis.call('get', KEYS[3])}
end
return {0}
"""

# KEYS: lock, state, data; ARGV: token, then for state and for data each: what to do ("" keep,
# "del", "set"), the value, its TTL in seconds ("" none). Nothing is written unless the lock
# still holds our token; 1 when it did (and is now released), 0 otherwise.
RELEASE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
    return 0
end
for i = 0, 1 do
    local key, op, value, ttl = KEYS[2 + i], ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[4 + 3 * i]
    if op == 'del' then
        redis.call('del', key)
    elseif op == 'set' and ttl ~= '' then
        redis.call('set', key, value, 'EX', ttl)
    elseif op == 'set' then
        redis.call('set', key, value)
    end
end
redis.call('del', KEYS[1])
return 1
"""


def _ttl_seconds(ttl: Any) -> str:
    """aiogram's state_ttl/data_ttl (None, seconds, or a timedelta) as the script's argument."""
    if ttl is None:
        return ""
    seconds = int(ttl.total_seconds()) if hasattr(ttl, "total_seconds") else int(ttl)
    return str(seconds) if seconds > 0 else ""


@dataclass
class _Held:
    """One chat's FSM while this process holds its lock: the raw values read with the lock and
    whether an update changed them."""

    state: str | None
    data: str | None  # the JSON as stored; None: no data
    state_changed: bool = False
    data_changed: bool = False


def _text(value: Any) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else cast(str | None, value)


class KiebotRedisStorage(RedisStorage):
    """RedisStorage whose isolation (create_isolation) reads a chat's FSM with its lock and
    writes it back with the release; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: dict[StorageKey, _Held] = {}
        # EVALSHA, loaded into Redis by redis-py on first use (and again after a SCRIPT FLUSH).
        self.take_script = self.redis.register_script(TAKE)
        self.release_script = self.redis.register_script(RELEASE)

    def create_isolation(self, **kwargs: Any) -> KiebotRedisIsolation:  # type: ignore[override]
        return KiebotRedisIsolation(self, **kwargs)

    async def get_state(self, key: StorageKey) -> str | None:
        held = self._held.get(key)
        if held is None:
            return await super().get_state(key)
        return held.state

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        held = self._held.get(key)
        if held is None:
            await super().set_state(key, state)
            return
        held.state = None if state is None else cast(
            str, state.state if isinstance(state, State) else state)
        held.state_changed = True

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        held = self._held.get(key)
        if held is None:
            return await super().get_data(key)
        # A fresh dict each time, as from Redis: a handler may change what it was given.
        return {} if held.data is None else cast(dict[str, Any], self.json_loads(held.data))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        held = self._held.get(key)
        if held is None:
            await super().set_data(key, data)
            return
        if not isinstance(data, dict):
            msg = f"Data must be a dict or dict-like object, got {type(data).__name__}"
            raise DataNotDictLikeError(msg)
        held.data = self.json_dumps(data) if data else None
        held.data_changed = True


def _change(changed: bool, value: str | None, ttl: Any) -> tuple[str, str, str]:
    """RELEASE's (what, value, ttl) for one of a chat's state and data."""
    if not changed:
        return "", "", ""
    if value is None:
        return "del", "", ""
    return "set", value, _ttl_seconds(ttl)


class KiebotRedisIsolation(BaseEventIsolation):
    """Per-chat lock in Redis, as aiogram's RedisEventIsolation (a token under `<key>:lock`
    with a timeout, waited for in steps of `sleep`, released only if still ours), taken together
    with the chat's FSM read and released together with its write (TAKE, RELEASE)."""

    def __init__(self, storage: KiebotRedisStorage,
                 lock_kwargs: dict[str, Any] | None = None) -> None:
        kwargs = dict(DEFAULT_REDIS_LOCK_KWARGS if lock_kwargs is None else lock_kwargs)
        self.storage = storage
        self.timeout_ms = int(float(kwargs.get("timeout", 60)) * 1000)
        self.sleep_s = float(kwargs.get("sleep", 0.1))

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        storage = self.storage
        names = storage.key_builder
        keys = [names.build(key, "lock"), names.build(key, "state"), names.build(key, "data")]
        token = uuid.uuid4().hex
        while True:
            taken = await storage.take_script(keys=keys, args=[token, self.timeout_ms])
            if taken[0]:
                break
            await asyncio.sleep(self.sleep_s)
        held = _Held(_text(taken[1]), _text(taken[2]))
        storage._held[key] = held
        try:
            yield None
        finally:
            if storage._held.get(key) is held:
                del storage._held[key]
            released = await storage.release_script(keys=keys, args=[
                token,
                *_change(held.state_changed, held.state, storage.state_ttl),
                *_change(held.data_changed, held.data, storage.data_ttl),
            ])
            if not released:
                raise LockNotOwnedError("Cannot release a lock that's no longer owned")

    async def close(self) -> None:
        pass
