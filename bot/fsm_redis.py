"""aiogram's Redis FSM storage and events isolation, with the round trips of one update cut to
two: one pipeline takes the chat's lock and reads its state and data, one pipeline writes what
the handlers changed and releases the lock.

aiogram's own pair costs an update five or six round trips (SET NX for the lock, GET state in
FSMContextMiddleware, GET data and SET/DEL for each change a handler makes, EVALSHA to release),
each a pooled-connection checkout and a socket write: the Postgres updates bench spent about a
tenth of the bot's CPU in them.

While this process holds a chat's lock (the isolation below, which FSMContextMiddleware takes
around every update of the chat), the chat's state and data are the copy read with the lock:
the handlers' reads are answered from it and their writes change it, and the changes are written
to Redis when the update is done, just before the lock is released. Nobody else may change a
chat's FSM while its lock is held (that is what the lock is for), so the copy is exact, and the
update's changes land together: a process that dies mid-update leaves the chat's FSM as it was
for the replay (bot/inbox.py hands the update to the next claimer). Outside a held lock (a
background task, a test reading the storage) every call goes to Redis as aiogram's does.
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

# redis-py's Lock release: delete the lock only if it still holds our token. Sent with EVAL in
# the closing pipeline (EVALSHA in a pipeline makes redis-py ask SCRIPT EXISTS first: a round
# trip more); Redis caches the compiled script by its digest either way.
RELEASE = """
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('del', KEYS[1])
return 1
"""


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


class KiebotRedisIsolation(BaseEventIsolation):
    """Per-chat lock in Redis, as aiogram's RedisEventIsolation (a token under `<key>:lock`
    with a timeout, waited for in steps of `sleep`, released only if still ours), taken together
    with the chat's FSM read and released together with its write."""

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
        lock_key = names.build(key, "lock")
        state_key, data_key = names.build(key, "state"), names.build(key, "data")
        token = uuid.uuid4().hex
        while True:
            async with storage.redis.pipeline(transaction=False) as pipe:
                pipe.set(lock_key, token, nx=True, px=self.timeout_ms)
                pipe.mget(state_key, data_key)
                taken, (state, data) = await pipe.execute()
            if taken:
                break
            await asyncio.sleep(self.sleep_s)
        held = _Held(_text(state), _text(data))
        storage._held[key] = held
        try:
            yield None
        finally:
            if storage._held.get(key) is held:
                del storage._held[key]
            async with storage.redis.pipeline(transaction=False) as pipe:
                if held.state_changed:
                    if held.state is None:
                        pipe.delete(state_key)
                    else:
                        pipe.set(state_key, held.state, ex=storage.state_ttl)
                if held.data_changed:
                    if held.data is None:
                        pipe.delete(data_key)
                    else:
                        pipe.set(data_key, held.data, ex=storage.data_ttl)
                pipe.eval(RELEASE, 1, lock_key, token)
                released = (await pipe.execute())[-1]
            if not released:
                raise LockNotOwnedError("Cannot release a lock that's no longer owned")

    async def close(self) -> None:
        pass
