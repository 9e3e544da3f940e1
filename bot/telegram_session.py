"""aiogram's aiohttp session with two costs of every Bot API call paid once instead.

- Parsed-answer models: aiogram parses each answer with `Response[method.__returning__]`, a
  pydantic generic model built on first use and cached by pydantic in a WeakValueDictionary,
  so after each garbage collection the next call built it again (schema generation, several
  milliseconds). Holding a reference per return type makes every later call a cache hit.
- Keyboards: the bot's keyboards are built once and reused (handlers/keyboards.py caches them),
  yet aiogram serialised the same object to JSON on every send (model_dump + json.dumps).
  A small memo keyed by the object's identity, holding the object so the identity cannot be
  reused, returns the JSON it produced the first time. aiogram's objects are frozen models; the
  bot never mutates a keyboard after building it.

Under a crowd of updates the two were about a sixth of the bot's CPU (py-spy, `make bench
--only updates`)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import Response, TelegramMethod
from aiogram.types import InlineKeyboardMarkup

KEYBOARD_MEMO_SIZE = 1024


class KiebotSession(AiohttpSession):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._response_models: dict[Any, type] = {}
        self._keyboards: OrderedDict[tuple[int, bool], tuple[InlineKeyboardMarkup, Any]] = (
            OrderedDict())

    async def make_request(self, bot: Any, method: TelegramMethod[Any],
                           timeout: int | None = None) -> Any:
        returning = method.__returning__
        if returning not in self._response_models:
            self._response_models[returning] = Response[returning]  # type: ignore[index]
        return await super().make_request(bot, method, timeout)

    def prepare_value(self, value: Any, bot: Any, files: dict[str, Any],
                      _dumps_json: bool = True) -> Any:
        if not isinstance(value, InlineKeyboardMarkup):
            return super().prepare_value(value, bot, files, _dumps_json)
        key = (id(value), _dumps_json)
        hit = self._keyboards.get(key)
        if hit is not None and hit[0] is value:
            self._keyboards.move_to_end(key)
            return hit[1]
        prepared = super().prepare_value(value, bot, files, _dumps_json)
        self._keyboards[key] = (value, prepared)
        if len(self._keyboards) > KEYBOARD_MEMO_SIZE:
            self._keyboards.popitem(last=False)
        return prepared
