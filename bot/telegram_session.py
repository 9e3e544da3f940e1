"""aiogram's aiohttp session, with the per-call costs a crowd of updates pays on every reply cut.

- JSON bodies: aiogram sends every call as a form (each nested object JSON-encoded into its
  own field, then the fields urlencoded by aiohttp's FormData): about 0.2 ms of CPU per call.
  The Bot API takes `application/json` for any call without a file upload, so a call without
  one goes as one `json.dumps` of its parameters; a call that uploads a file still goes through
  aiogram's multipart form.
- Answer models pinned: `Response[T]` is a pydantic generic built on first use and cached by
  pydantic in a WeakValueDictionary, so after a garbage collection the next call built it again
  (schema generation, several milliseconds). Holding one per return type makes later calls hits.

Under the updates bench's crowd (`make bench BENCH_ARGS="--db postgres --only updates"`, py-spy)
aiogram's form building was about a tenth of the bot's CPU; the JSON body costs 35 µs where
the form cost 80 µs (a reply with a 4-row keyboard) before aiohttp's own FormData handling."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import Response, TelegramMethod
from aiohttp import ClientError

JSON_HEADERS = {"Content-Type": "application/json"}


class KiebotSession(AiohttpSession):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._response_models: dict[Any, Any] = {}

    def response_model(self, method: TelegramMethod[Any]) -> Any:
        returning = method.__returning__
        model = self._response_models.get(returning)
        if model is None:
            model = self._response_models[returning] = Response[returning]  # type: ignore[index]
        return model

    def json_body(self, bot: Any, method: TelegramMethod[Any]) -> bytes | None:
        """The call's parameters as a JSON body, or None when it uploads a file (which only a
        multipart form can carry). Values are prepared as aiogram prepares them (bot defaults
        resolved, enums to their values, dates to Unix time); absent ones are left out."""
        files: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False, exclude_none=True).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is None or prepared == "":
                continue
            if isinstance(value, (datetime.datetime, datetime.timedelta)):
                prepared = int(prepared)  # aiogram's form sends the timestamp as text
            params[key] = prepared
        if files:
            return None
        return self.json_dumps(params).encode()

    async def make_request(self, bot: Any, method: TelegramMethod[Any],
                           timeout: int | None = None) -> Any:
        self.response_model(method)
        body = self.json_body(bot, method)
        if body is None:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(url, data=body, headers=JSON_HEADERS,
                                    timeout=self.timeout if timeout is None else timeout) as resp:
                raw_result = await resp.text()
        except asyncio.TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        response = self.check_response(bot=bot, method=method, status_code=resp.status,
                                       content=raw_result)
        return response.result
