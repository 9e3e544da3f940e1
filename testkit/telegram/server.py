"""FakeTelegram: the aiohttp server, the call pipeline and the state shared by the method modules."""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import secrets
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from . import api_generic, api_media, api_messages, api_payments
from .errors import BLOCKED, ApiError, bad_request, retry_after
from .faults import Faults
from .flood import FloodControl, FloodEvent, counted
from .limits import check_upload_size
from .spec import Spec, Upload
from .state import (CallbackQueryRecord, Chat, ChatMessage, FileStore, Notifier, Payment,
                    PreCheckoutRecord, UserInfo)
from .transport import Call, Reply, error_response, read_params
from .updates import UpdateQueue

log = logging.getLogger(__name__)

HANDLERS: dict[str, Callable[..., Awaitable[Any]]] = {
    **api_messages.HANDLERS, **api_media.HANDLERS, **api_payments.HANDLERS,
}
# Methods the server ignores when a webhook reply carries them (Bot API "Making requests when
# getting updates").
_IGNORED_IN_WEBHOOK_REPLY = {"setwebhook", "deletewebhook", "close", "logout"}


class FakeTelegram:
    """A fake Bot API server for one bot; see the package docstring for a walkthrough."""

    def __init__(
        self,
        token: str = "123456:TEST",
        *,
        flood_control: bool = True,
        chat_burst: int = 3,
        bot_first_name: str = "Fake Bot",
        bot_username: str = "fake_test_bot",
        precheckout_timeout: float = 10.0,
        callback_timeout: float = 30.0,
        webhook_backoff: tuple[float, float] = (1.0, 60.0),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        spec: Spec | None = None,
    ) -> None:
        bot_id, sep, secret = token.partition(":")
        if not (bot_id.isdigit() and sep and secret):
            raise ValueError("token must look like <digits>:<secret>")
        self._token = token
        self.bot_id = int(bot_id)
        self.bot_first_name, self.bot_username = bot_first_name, bot_username
        self.spec = spec or Spec()
        self.clock, self.wall, self.sleep = clock, wall, sleep
        self.precheckout_timeout = precheckout_timeout
        self.callback_timeout = callback_timeout
        self.flood_control_enabled = flood_control
        # Telegram lets a chat take a few messages at once, then about one a second. A scripted
        # user types far faster than a person; a conversation test may allow a larger burst so
        # that its replies are not paced at 1/s (flood handling has tests of its own).
        self.flood = FloodControl(per_chat_burst=float(chat_burst), clock=clock)
        self.faults = Faults(clock=clock)
        self.notifier = Notifier()
        self.updates = UpdateQueue(self.notifier, self.faults, wall=wall, sleep=sleep, backoff=webhook_backoff)
        self.updates.on_reply = self._webhook_reply
        self.files = FileStore()
        self.chats: dict[int, Chat] = {}
        self.users: dict[int, Any] = {}
        self.calls: list[Call] = []
        # Calls received but not answered yet (e.g. held by a delay fault): a test that killed
        # the bot mid-call waits for these to land before it reads the chat.
        self.calls_in_progress: list[Call] = []
        self.flood_events: list[FloodEvent] = []
        # Called with each recorded call (the benchmark's crowds wake only the chat it concerns,
        # where the notifier would wake every waiter on every change).
        self.call_observers: list[Callable[[Call], None]] = []
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.precheckout_queries: dict[str, PreCheckoutRecord] = {}
        self.payments: dict[str, Payment] = {}
        self.star_transactions: list[dict[str, Any]] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.invoice_links: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def __repr__(self) -> str:  # never shows the token
        return f"FakeTelegram(bot_id={self.bot_id}, base_url={self.base_url!r})"

    # --- lifecycle ----------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        from .control import add_control_routes

        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/bot{token}/{method}", self._api_route)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file_route)
        add_control_routes(app, self)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        # access_log=None: request paths contain the bot token.
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        bound_port = sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        await self.updates.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeTelegram":
        if not self.base_url:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- users --------------------------------------------------------------------------------
    def user(self, user_id: int, first_name: str = "Ann", language_code: str | None = "en",
             username: str | None = None, last_name: str | None = None) -> Any:
        """The simulated user with this id (created on first use, the same object afterwards)."""
        from .user import FakeUser

        if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
            raise ValueError(f"user_id must be a positive integer, got {user_id!r}")
        if not first_name:
            raise ValueError("first_name must not be empty")
        if user_id not in self.users:
            info = UserInfo(user_id, first_name, last_name, username, language_code)
            self.chats[user_id] = Chat(info)
            self.users[user_id] = FakeUser(self, info)
        return self.users[user_id]

    async def wait_for_call(self, method: str, predicate: Callable[[Call], bool] | None = None,
                            timeout: float = 20.0, *, since: int = 0) -> Call:
        """The first recorded call of method (case-insensitive) at index ≥ since matching predicate.
        Use since=fake.mark() to ignore calls made before now."""
        wanted = method.lower()

        def check() -> Call | None:
            for record in self.calls[since:]:
                if record.method.lower() == wanted and (predicate is None or predicate(record)):
                    return record
            return None

        return await self.notifier.wait_for(check, timeout, f"a {method} call")

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every call received so far has been answered (and so recorded in calls)."""
        await self.notifier.wait_for(lambda: not self.calls_in_progress, timeout, "no call in progress")

    def mark(self) -> int:
        """An index into fake.calls for wait_for_call(since=...)."""
        return len(self.calls)

    # --- helpers for method modules -----------------------------------------------------------
    def now(self) -> int:
        return int(self.wall())

    def new_id(self) -> str:
        return f"{next(self._ids)}{secrets.randbelow(10**12):012d}"

    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_first_name, "username": self.bot_username}

    def chat(self, chat_id: Any, *, sending: bool = False) -> Chat:
        """The private chat for chat_id; 400 if unknown, 403 when sending to a user who blocked us."""
        key = chat_id
        if isinstance(chat_id, str):
            key = int(chat_id) if chat_id.lstrip("-").isdigit() else None
        chat = self.chats.get(key) if key is not None else None
        if chat is None:
            raise bad_request("chat not found")
        if sending and chat.blocked:
            raise ApiError(403, BLOCKED)
        return chat

    def post_message(self, chat: Chat, content: dict[str, Any], *, outgoing: bool,
                     files: list[Any] | None = None, invoice: dict[str, Any] | None = None) -> ChatMessage:
        sender = self.bot_user() if outgoing else chat.user.as_user()
        message = {"message_id": chat.next_message_id(), "from": sender, "chat": chat.user.as_chat(),
                   "date": self.now(), **content}
        stored = ChatMessage(message, outgoing, files or [], invoice=invoice)
        chat.messages[stored.message_id] = stored
        self.notifier.notify()
        return stored

    def reply_to(self, chat: Chat, params: dict[str, Any]) -> dict[str, Any]:
        """{"reply_to_message": …} for reply_parameters; 400 if that message does not exist."""
        reply = params.get("reply_parameters")
        if not reply:
            return {}
        target = chat.messages.get(reply["message_id"])
        if target is None or target.deleted:
            if reply.get("allow_sending_without_reply"):
                return {}
            raise bad_request("message to be replied not found")
        quoted = {k: v for k, v in target.message.items() if k != "reply_to_message"}
        return {"reply_to_message": copy.deepcopy(quoted)}

    def find_message(self, chat_id: Any, message_id: int, what: str) -> ChatMessage:
        chat = self.chat(chat_id)
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise bad_request(f"message to {what} not found")
        return stored

    def emit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Queue an update: a snapshot of body, as later edits do not change a sent update."""
        return self.updates.add(copy.deepcopy(body))

    def record_flood(self, method: str, chat_id: Any, seconds: int, reason: str) -> ApiError:
        error = retry_after(seconds)
        self.flood_events.append(FloodEvent(method, chat_id, error.parameters["retry_after"], self.clock(), reason))
        return error

    # --- the call pipeline --------------------------------------------------------------------
    async def call(self, method_name: str, raw: dict[str, Any], files: dict[str, Upload] | None = None,
                   *, via_webhook_reply: bool = False) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Run one Bot API call; returns (HTTP status, JSON body, headers) and records it."""
        files = files or {}
        record = Call(method_name, dict(raw), files, via_webhook_reply=via_webhook_reply)
        self.calls_in_progress.append(record)
        self.notifier.notify()
        try:
            return await self._call(record, method_name, raw, files)
        finally:
            self.calls_in_progress.remove(record)
            self.notifier.notify()

    async def _call(self, record: Call, method_name: str, raw: dict[str, Any],
                    files: dict[str, Upload]) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers: dict[str, str] = {}
        try:
            method = self.spec.method_name(method_name)
            record.method = method
            delay = self.faults.delay_for(method)
            if delay:
                await self.sleep(delay)
            await self.faults.wait_if_held(method)
            status = self.faults.take_error() if method != "getUpdates" else None
            if status is not None:
                raise ApiError(status, "Internal Server Error")
            record.arrived_at = self.clock()
            params = self.spec.check_call(method, raw, files)
            record.params = params
            for name, value in params.items():
                if isinstance(value, Upload):
                    check_upload_size(value, name)
            for upload in files.values():
                check_upload_size(upload, "file")
            if counted(method):
                self._flood_check(method, params)
            result = await self._dispatch(method, params, files)
            reply = result if isinstance(result, Reply) else Reply(result)
            # A snapshot: later edits change the stored message, not what this call returned.
            body: dict[str, Any] = {"ok": True, "result": copy.deepcopy(reply.result)}
            if reply.description:
                body["description"] = reply.description
            status_code = 200
        except ApiError as error:
            body, status_code, headers = error.body(), error.code, error.headers()
        except Exception:  # a bug in the fake must not look like a bot bug or kill the server
            log.exception("fake Telegram failed on %s", record.method)
            error = ApiError(500, "Internal Server Error: the fake failed, see its log")
            body, status_code, headers = error.body(), 500, {}
        record.response, record.status = body, status_code
        record.at = self.clock()
        self.calls.append(record)
        for observer in self.call_observers:
            observer(record)
        self.notifier.notify()
        return status_code, body, headers

    def _flood_check(self, method: str, params: dict[str, Any]) -> None:
        chat_id = params.get("chat_id")
        seconds = self.faults.take_flood()
        if seconds is not None:
            raise self.record_flood(method, chat_id, seconds, "fault")
        if not self.flood_control_enabled:
            return
        cost = len(params.get("media") or []) if method == "sendMediaGroup" else 1
        wait = self.flood.take(chat_id, max(cost, 1))
        if wait is not None:
            raise self.record_flood(method, chat_id, wait, "flood")

    async def _dispatch(self, method: str, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        handler = HANDLERS.get(method)
        if handler is None:
            return api_generic.plausible_result(self, method, params)
        return await handler(self, params, files)

    async def _webhook_reply(self, method: str, params: dict[str, Any], files: dict[str, Upload]) -> None:
        if method.lower().startswith("get") or method.lower() in _IGNORED_IN_WEBHOOK_REPLY:
            return
        await self.call(method, params, files, via_webhook_reply=True)

    # --- routes -------------------------------------------------------------------------------
    def _token_ok(self, token: str) -> bool:
        return secrets.compare_digest(token.encode(), self._token.encode())

    async def _api_route(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if not self._token_ok(request.match_info["token"]):
            error = ApiError(401, "Unauthorized")
            self.calls.append(Call(method, {}, response=error.body(), status=401))
            return error_response(error)
        try:
            raw, files = await read_params(request)
        except ApiError as error:
            self.calls.append(Call(method, {}, response=error.body(), status=error.code))
            return error_response(error)
        status, body, headers = await self.call(method, raw, files)
        return web.json_response(body, status=status, headers=headers)

    async def _file_route(self, request: web.Request) -> web.StreamResponse:
        if not self._token_ok(request.match_info["token"]):
            return error_response(ApiError(401, "Unauthorized"))
        stored = self.files.by_path(request.match_info["path"])
        if stored is None or stored.data is None:
            return error_response(ApiError(404, "Not Found"))
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    async def _not_found(self, request: web.Request) -> web.Response:
        return error_response(ApiError(404, "Not Found"))
