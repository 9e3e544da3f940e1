"""The durable inbox for Telegram updates: nothing acknowledged is lost, one chat at a time.

Intake (webhook or long polling) writes each update to `updates_inbox` before Telegram hears it
was received: the webhook answers 200 only after the row is committed, and the poller asks for
the next offset (which confirms the previous batch to Telegram) only after its batch is
committed. A redelivered update_id is a no-op insert. Concurrent webhook requests share one
transaction (InboxWriter: group commit), which keeps the per-update cost of durability small.

The drainer (InboxDrainer) claims unhandled rows with a lease and feeds them to the aiogram
Dispatcher: one chat's updates one at a time in update_id order, different chats concurrently
(at most INBOX_CONCURRENCY at once; the database pool bounds the connections they use).
Handled rows are marked in batches. A process that dies mid-handler leaves its rows leased; when
the lease runs out another (or the restarted) process handles them again, so every handler must
be safe to run twice for one update (request keys, charge ids, admin message keys).

Across processes the claim (storage/dialect.py: claim_inbox) never hands out a chat another
process holds; within the FSM, aiogram's events isolation (Redis when REDIS_URL is set) guards
the same chat's state.

Why a polling loop of our own rather than aiogram's start_polling: aiogram advances the offset
as soon as getUpdates returns and handles each update in a task, so an update Telegram was told
we have could still be lost; hooking that needs aiogram's private methods. The loop below is a
few lines of Bot(GetUpdates(...)).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery, GetUpdates, TelegramMethod
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.group_commit import GroupCommit
from bot.logging import kv
from bot.loop_share import LoopShare

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher
    from storage.repository import InboxUpdate, Repository

log = logging.getLogger("bot.inbox")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# An update that was claimed this many times without being marked handled took its process down
# each time (or ran past its lease each time): it is given up, not retried forever.
MAX_ATTEMPTS = 5
KEEP_HANDLED = timedelta(hours=24)  # Telegram redelivers for about a day at most
PRUNE_EVERY_S = 3600.0
STALE_QUERY = "query is too old"


class BadUpdate(ValueError):
    """The body is not a Telegram update; `reason` says why (returned to the sender as 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def chat_key_of(update: dict[str, Any]) -> int | None:
    """The chat whose order this update must keep: the event's chat (a callback's message
    chat), else its sender, else None (no order to keep)."""
    for kind, event in update.items():
        if kind == "update_id" or not isinstance(event, dict):
            continue
        chat = event.get("chat")
        if not isinstance(chat, dict):
            message = event.get("message")
            chat = message.get("chat") if isinstance(message, dict) else None
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return chat["id"]
        for field in ("from", "user"):
            sender = event.get(field)
            if isinstance(sender, dict) and isinstance(sender.get("id"), int):
                return sender["id"]
        return None
    return None


def parse_update(body: bytes) -> tuple[int, int | None, str]:
    """(update_id, chat_key, payload) of a webhook body; BadUpdate when it is none.

    The body is checked against aiogram's `Update` model here, at the door: a body that is
    stored and acknowledged must be one the drainer can hand to the dispatcher, or it would
    only fail later, in a background task, with nobody to answer."""
    update_id, chat_key, payload, _ = validate_update(body)
    return update_id, chat_key, payload


def validate_update(body: bytes, *, bot: Bot | None = None) -> tuple[int, int | None, str, Update]:
    """parse_update and the validated `Update` itself, bound to `bot` when given (as the
    dispatcher needs it), so the drainer of this process need not validate it a second time
    (ParsedUpdates)."""
    try:
        text = body.decode("utf-8")
        update = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise BadUpdate("body is not JSON") from None
    except RecursionError:  # json's C decoder gives up on ~1,000 levels: no Telegram update is
        raise BadUpdate("body is nested too deeply") from None
    if not isinstance(update, dict):
        raise BadUpdate("update is not a JSON object")
    update_id = update.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int) or not 0 <= update_id < 2**63:
        raise BadUpdate("update_id missing or not an integer")
    if _has_huge_number(update):
        raise BadUpdate("a number does not fit in 64 bits")
    try:
        model = Update.model_validate(update, context={"bot": bot} if bot is not None else None)
    except ValidationError as exc:
        raise BadUpdate(f"not a Telegram update: {_first_problem(exc)}") from None
    except RecursionError:
        raise BadUpdate("body is nested too deeply") from None
    return update_id, chat_key_of(update), text, model


class ParsedUpdates:
    """Updates this process validated at the webhook, kept for its drainer by update_id.

    Validating an Update is a tenth of the CPU an update costs; the webhook must do it anyway
    (to refuse what the dispatcher could not handle), so the drainer takes the object instead
    of parsing the stored JSON again. The row stays the source of truth: an update claimed by
    another process, replayed after a restart or evicted here is parsed from its payload. Only
    the newest `limit` are kept, so updates this process never claims cannot pile up."""

    def __init__(self, limit: int = 2048) -> None:
        self._limit = limit
        self._items: OrderedDict[int, Update] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, update_id: int, update: Update) -> None:
        self._items[update_id] = update
        if len(self._items) > self._limit:
            self._items.popitem(last=False)

    def take(self, update_id: int) -> Update | None:
        return self._items.pop(update_id, None)


def _has_huge_number(value: Any) -> bool:
    """Any integer outside a signed 64-bit range (Telegram's ids all fit in 52 bits): such a
    chat or user id would fail in the database, after the update was acknowledged. Iterative:
    the body may be nested as deep as json allows."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not -(2**63) <= item < 2**63:
            return True
    return False


def _first_problem(exc: ValidationError) -> str:
    """Where the body first differs from an Update and how (no input values echoed back)."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])[:120]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


class InboxWriter:
    """Stores updates with group commit (bot/group_commit.py): every update that arrives while a
    write is under way goes into the next transaction together; each caller returns once its
    row is committed (or raises)."""

    def __init__(self, repository: Repository, *, on_stored: Callable[[], None]) -> None:
        self._repository = repository
        self._on_stored = on_stored
        self._commit: GroupCommit[tuple[int, int | None, str], None] = GroupCommit(
            self._write, name="inbox-write")

    @property
    def waiting(self) -> int:
        """Updates queued for the next transaction (not yet being written)."""
        return self._commit.waiting

    async def add(self, update_id: int, chat_key: int | None, payload: str) -> None:
        await self._commit.submit((update_id, chat_key, payload))

    async def add_many(self, rows: list[tuple[int, int | None, str]]) -> None:
        await asyncio.gather(*(self.add(*row) for row in rows))

    async def _write(self, rows: list[tuple[int, int | None, str]]) -> list[None]:
        await self._repository.inbox_add(rows)
        self._on_stored()
        return [None] * len(rows)


def webhook_handler(writer: InboxWriter, *, secret_token: str, bot: Bot | None = None,
                    parsed: ParsedUpdates | None = None,
                    share: LoopShare | None = None) -> Callable[[web.Request], Any]:
    """POST /tg/webhook: the secret checked (401, as aiogram's handler answers), the update
    parsed (400 with the reason, never a 500) and stored; 200 only once it is durable. With
    `parsed` (the drainer's), the validated update is handed to this process's drainer;
    `share` (the process's LoopShare) is told while an answer is in flight."""
    share = share or LoopShare()

    async def handle(request: web.Request) -> web.Response:
        with share.acknowledging():
            return await answer(request)

    async def answer(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret_token.encode()):
            return web.Response(status=401, text="Unauthorized")
        try:
            update_id, chat_key, payload, update = validate_update(await request.read(), bot=bot)
        except BadUpdate as exc:
            log.warning(kv("webhook update rejected", reason=exc.reason))
            return web.json_response({"ok": False, "reason": exc.reason}, status=400)
        if parsed is not None:  # before the row is committed: the drainer may claim it at once
            parsed.put(update_id, update)
        try:
            await writer.add(update_id, chat_key, payload)
        except Exception as exc:
            if parsed is not None:
                parsed.take(update_id)
            # Not stored: Telegram must deliver it again, so anything but 2xx.
            log.error(kv("webhook update not stored", update_id=update_id,
                         error=type(exc).__name__))
            return web.json_response({"ok": False, "reason": "try again later"}, status=503)
        return web.Response(status=200)

    return handle


class InboxDrainer:
    """Claims inbox rows and feeds them to the dispatcher, per chat in order (module docstring)."""

    def __init__(self, repository: Repository, dispatcher: Dispatcher, bot: Bot, *, owner: str,
                 concurrency: int = 128, lease_seconds: float = 30.0,
                 poll_interval_s: float = 1.0) -> None:
        self._repository = repository
        self._dispatcher = dispatcher
        self._bot = bot
        self._owner = owner
        self._concurrency = concurrency
        self._lease_seconds = lease_seconds
        self._poll_interval_s = poll_interval_s
        self._max_backlog = concurrency * 4
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._queues: dict[Hashable, deque[InboxUpdate]] = {}
        self._workers: dict[Hashable, asyncio.Task[None]] = {}
        self._known: set[int] = set()  # claimed and not yet marked handled in the database
        self.parsed = ParsedUpdates(limit=max(2048, self._max_backlog * 4))
        self._backlog = 0
        self._more = False  # the last claim filled the backlog: more may be waiting
        self._done: list[int] = []
        self._marker: asyncio.Task[None] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self.handling = 0  # updates inside the dispatcher right now

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake.set()  # claim at once: a previous process may have left updates
        self._loops = [loop.create_task(self._claim_loop(), name="inbox-claim"),
                       loop.create_task(self._lease_loop(), name="inbox-lease")]
        log.info(kv("inbox drainer started", concurrency=self._concurrency))

    def wake(self) -> None:
        """New rows are stored: claim now rather than at the next interval."""
        self._wake.set()

    @property
    def busy(self) -> bool:
        """Rows claimed, handled but not yet marked, or a mark under way."""
        return bool(self._known or self._done or (self._marker and not self._marker.done()))

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming, let running handlers finish (cancel them after `grace_s`), record what
        was handled and hand the rest back for the next process."""
        self._stopping = True
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        for queue in self._queues.values():  # not started: handed back below
            self._backlog -= len(queue)
            queue.clear()
        workers = set(self._workers.values())
        if workers:
            _, pending = await asyncio.wait(workers, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._flush_marks()
        try:
            await self._repository.inbox_release(owner=self._owner)
        except Exception as exc:  # the lease runs out by itself
            log.warning(kv("inbox release failed", error=type(exc).__name__))
        log.info("inbox drainer stopped")

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                # The interval finds rows other processes stored and leases that ran out.
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
            self._wake.clear()
            try:
                await self._claim()
            except Exception as exc:
                log.error(kv("inbox claim failed", error=type(exc).__name__,
                             reason=str(exc)[:200]))

    async def _claim(self) -> None:
        while not self._stopping:
            room = self._max_backlog - self._backlog
            if room <= 0:
                self._more = True
                return  # a handler finishing wakes us
            rows = await self._repository.inbox_claim(
                owner=self._owner, lease_seconds=self._lease_seconds, limit=room)
            fresh = 0
            for row in rows:
                if row.update_id in self._known:
                    continue  # ours already (its lease was renewed late): not twice at once
                self._known.add(row.update_id)
                self._enqueue(row)
                fresh += 1
            self._more = len(rows) >= room
            if not self._more or not fresh:
                return

    def _enqueue(self, row: InboxUpdate) -> None:
        key: Hashable = row.chat_key if row.chat_key is not None else ("update", row.update_id)
        self._queues.setdefault(key, deque()).append(row)
        self._backlog += 1
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(
                self._chat_worker(key), name=f"inbox-chat-{key}")

    async def _chat_worker(self, key: Hashable) -> None:
        try:
            async with self._slots:
                queue = self._queues.get(key)
                while queue and not self._stopping:
                    row = queue.popleft()
                    try:
                        await self._handle(row)
                    finally:
                        self._backlog -= 1
                    self._mark(row.update_id)
                    if self._more and self._backlog < self._max_backlog // 2:
                        self._wake.set()  # the last claim was cut short by the backlog bound
        finally:
            self._workers.pop(key, None)
            if not self._queues.get(key):
                self._queues.pop(key, None)

    async def _handle(self, row: InboxUpdate) -> None:
        if row.attempts > MAX_ATTEMPTS:
            log.error(kv("inbox update given up", update_id=row.update_id, attempts=row.attempts))
            return
        self.handling += 1
        try:
            update = self.parsed.take(row.update_id) or Update.model_validate(
                json.loads(row.payload), context={"bot": self._bot})
            result = await self._dispatcher.feed_update(self._bot, update)
            if isinstance(result, TelegramMethod):  # a handler's reply meant for a webhook answer
                await self._dispatcher.silent_call_request(bot=self._bot, result=result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Handled means "will not be retried": an update that fails (a bug, bad input) would
            # fail the same way again. The error router already answered the user if it could.
            log.error(kv("inbox update failed", update_id=row.update_id,
                         error=type(exc).__name__, reason=str(exc)[:200]))
        finally:
            self.handling -= 1

    # -- marking -----------------------------------------------------------------------------

    def _mark(self, update_id: int) -> None:
        self._done.append(update_id)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.get_running_loop().create_task(self._flush_marks(),
                                                                  name="inbox-mark")

    async def _flush_marks(self) -> None:
        """Mark everything handled so far in one transaction; what finishes meanwhile goes into
        the next (batches grow with the load)."""
        while self._done:
            batch, self._done = self._done, []
            try:
                await self._repository.inbox_mark_handled(batch)
            except Exception as exc:
                log.error(kv("inbox mark failed", count=len(batch), error=type(exc).__name__))
                self._done[:0] = batch
                if self._stopping:
                    return  # the lease runs out; the rows are replayed (handlers are idempotent)
                await asyncio.sleep(1.0)
                continue
            self._known.difference_update(batch)

    # -- leases and pruning ------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while not self._stopping:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                if self._known:
                    await self._repository.inbox_renew(owner=self._owner,
                                                       lease_seconds=self._lease_seconds)
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_EVERY_S
                    await self.prune()
            except Exception as exc:
                log.warning(kv("inbox lease renewal failed", error=type(exc).__name__))

    async def prune(self) -> int:
        from datetime import UTC, datetime

        removed = await self._repository.inbox_prune(
            handled_before=datetime.now(UTC) - KEEP_HANDLED)
        if removed:
            log.info(kv("inbox pruned", removed=removed))
        return removed


class StaleCallbackAnswers(BaseRequestMiddleware):
    """An update replayed after a crash (or handled late behind its chat) answers a button
    Telegram has stopped waiting for, and gets "query is too old". The answer is a courtesy:
    the handler goes on instead of ending in the error router's apology to the user."""

    async def __call__(self, make_request: NextRequestMiddlewareType[Any], bot: Bot,
                       method: TelegramMethod[Any]) -> Any:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if isinstance(method, AnswerCallbackQuery) and STALE_QUERY in exc.message:
                log.info(kv("button answer too late", error="query too old"))
                return True
            raise


class InboxPoller:
    """Long polling into the inbox: getUpdates → store the batch → only then ask with the next
    offset (which is what tells Telegram the batch was received)."""

    def __init__(self, bot: Bot, writer: InboxWriter, *, allowed_updates: list[str],
                 timeout: int = 10) -> None:
        self._bot = bot
        self._writer = writer
        self._allowed = allowed_updates
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        """Cancel the long poll: a batch not yet stored is not confirmed, so Telegram sends it
        again to the next poller."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        offset: int | None = None
        failures = 0
        while True:
            try:
                updates = await self._bot(
                    GetUpdates(offset=offset, timeout=self._timeout,
                               allowed_updates=self._allowed),
                    request_timeout=self._timeout + 10,
                )
                if updates:
                    await self._writer.add_many([
                        _row_of(update) for update in updates])
                    offset = updates[-1].update_id + 1
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # TelegramAPIError, network, the database
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning(kv("getUpdates failed", error=type(exc).__name__, retry_in_s=delay))
                await asyncio.sleep(delay)


def _row_of(update: Update) -> tuple[int, int | None, str]:
    data = update.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return update.update_id, chat_key_of(data), json.dumps(data, ensure_ascii=False)
