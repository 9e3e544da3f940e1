"""Crowds: many simulated users running one short script at once, and call counting — the knobs
the benchmark (bench/) drives from another process.

    POST /_fake/crowd/users   {"first_id": 1000, "count": 1000, "language_code": "en"}
                              -> {"created": n}   (users first_id … first_id+count-1)
    POST /_fake/crowd/run     {"first_id": 1000, "count": 1000, "timeout": 60,
                               "steps": [{"command": "/start"}, {"tap": "💰 Balance"},
                                         {"text": "a fox"}, {"see": "Ready"}]}
                              (or "user_ids": [...] instead of first_id/count)
                              -> {"run": id}; every user runs the steps in order, concurrently
                              with the others. A tap waits for its button and then for the
                              bot's answerCallbackQuery; see waits for a bot message containing
                              the text. Each wait fails the user after `timeout` seconds.
    GET  /_fake/crowd/run/{id} -> {"users", "done", "failed", "failed_users", "errors", "started_at",
                               "finished_at"}   (finished_at null while users are running)
    GET  /_fake/stats?since=<t>&methods=sendPhoto,sendVideo&contains=oops&contains=упс
                              -> {"calls": testkit.rates.summary of the matching calls,
                                  "flood": 429s issued since, "containing": matching calls whose
                                  text or caption contains any `contains`, "now": clock}
    POST /_fake/flood_limits  {"global_rate": 1e6, "global_burst": 1e6} (also per_chat_rate,
                              per_chat_burst) -> the limits now in force

Times are the fake's clock (time.monotonic(): comparable across processes on one machine).
A crowd waits on its own per-chat events, woken by FakeTelegram.call_observers, because the
fake's notifier wakes every waiter on every change: a thousand waiting users would make the
fake, not the bot, the bottleneck.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web

from testkit.rates import summary
from .errors import FakeUserError
from .transport import Call

if TYPE_CHECKING:
    from .server import FakeTelegram

STEP_KINDS = ("command", "text", "tap", "see")
MAX_CROWD = 100_000
_MAX_ERRORS = 10


class CrowdStepFailed(Exception):
    pass


class Crowd:
    def __init__(self, fake: FakeTelegram, user_ids: list[int], steps: list[dict[str, str]],
                 timeout: float) -> None:
        self.fake, self.user_ids, self.steps, self.timeout = fake, user_ids, steps, timeout
        self._wake = {uid: asyncio.Event() for uid in user_ids}
        self.done = 0
        self.failed = 0
        self.failed_users: list[int] = []
        self.errors: list[str] = []
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.task: asyncio.Task[None] | None = None

    def status(self) -> dict[str, Any]:
        return {"users": len(self.user_ids), "done": self.done, "failed": self.failed,
                "failed_users": self.failed_users, "errors": self.errors, "started_at": self.started_at,
                "finished_at": self.finished_at}

    def observe(self, call: Call) -> None:
        chat = call.params.get("chat_id")
        if chat is None and call.params.get("callback_query_id") is not None:
            query = self.fake.callback_queries.get(str(call.params["callback_query_id"]))
            chat = query.chat_id if query else None
        try:
            event = self._wake.get(int(chat)) if chat is not None else None
        except (TypeError, ValueError):
            event = None
        if event is not None:
            event.set()

    async def run(self) -> None:
        self.fake.call_observers.append(self.observe)
        try:
            self.started_at = self.fake.clock()
            await asyncio.gather(*(self._one(uid) for uid in self.user_ids))
        finally:
            self.finished_at = self.fake.clock()
            self.fake.call_observers.remove(self.observe)

    async def _one(self, uid: int) -> None:
        user = self.fake.users[uid]
        try:
            for step in self.steps:
                await self._step(user, step)
        except Exception as exc:  # one user's failure is counted, never the whole crowd's end
            self.failed += 1
            self.failed_users.append(uid)
            if len(self.errors) < _MAX_ERRORS:
                reason = str(exc) if isinstance(exc, (CrowdStepFailed, FakeUserError)) else repr(exc)
                self.errors.append(f"user {uid}: {reason}")
        else:
            self.done += 1

    async def _step(self, user: Any, step: dict[str, str]) -> None:
        kind, value = next(iter(step.items()))
        if kind == "command":
            await user.send_command(value)
        elif kind == "text":
            await user.send_text(value)
        elif kind == "see":
            await self._until(user.id, lambda: _shows_text(user, value), f"no message with {value!r}")
        elif kind == "tap":
            await self._until(user.id, lambda: _shows_button(user, value), f"no button {value!r}")
            record = user.press(value)
            await self._until(user.id, lambda: record.answer is not None,
                              f"the tap on {value!r} was not answered")

    async def _until(self, uid: int, check: Callable[[], Any], what: str) -> None:
        event = self._wake[uid]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            event.clear()
            if check():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CrowdStepFailed(f"{what} within {self.timeout}s")
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass


def _bot_messages(user: Any) -> list[Any]:
    return [m for m in user.chat.live() if m.outgoing]


def _shows_text(user: Any, needle: str) -> bool:
    return any(needle in (m.message.get("text") or m.message.get("caption") or "")
               for m in _bot_messages(user))


def _shows_button(user: Any, text: str) -> bool:
    return any(button.get("text") == text for m in _bot_messages(user)
               for row in (m.message.get("reply_markup") or {}).get("inline_keyboard", [])
               for button in row)


def parse_steps(steps: Any) -> list[dict[str, str]]:
    if not isinstance(steps, list) or not steps:
        raise ValueError("steps must be a non-empty list")
    for step in steps:
        if not (isinstance(step, dict) and len(step) == 1):
            raise ValueError(f"each step is one of {{kind: value}} with kind in {STEP_KINDS}")
        kind, value = next(iter(step.items()))
        if kind not in STEP_KINDS or not isinstance(value, str) or not value:
            raise ValueError(f"bad step {step!r}: kinds are {STEP_KINDS}, values non-empty strings")
    return steps


def _id_range(body: dict[str, Any]) -> list[int]:
    if "user_ids" in body:
        ids = body["user_ids"]
        if not (isinstance(ids, list) and ids and all(isinstance(i, int) and not isinstance(i, bool)
                                                      and i > 0 for i in ids)):
            raise ValueError("user_ids must be a non-empty list of positive integers")
        if len(ids) > MAX_CROWD:
            raise ValueError(f"at most {MAX_CROWD} users")
        return ids
    first, count = body.get("first_id"), body.get("count")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (first, count)):
        raise ValueError("first_id and count must be positive integers")
    if count > MAX_CROWD:
        raise ValueError(f"count must be at most {MAX_CROWD}")
    return list(range(first, first + count))


def _text_of(call: Call) -> str:
    return str(call.params.get("text") or call.params.get("caption") or "")


def add_crowd_routes(app: web.Application, fake: FakeTelegram) -> None:
    runs: dict[int, Crowd] = {}
    ids = itertools.count(1)

    async def create_users(request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            uids = _id_range(body)
            for uid in uids:
                fake.user(uid, first_name=str(body.get("first_name") or f"User{uid}"),
                          language_code=body.get("language_code", "en"))
        except ValueError as exc:
            return _fail(str(exc))
        return web.json_response({"created": len(uids)})

    async def start_run(request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            uids = _id_range(body)
            steps = parse_steps(body.get("steps"))
            timeout = float(body.get("timeout", 60))
        except (TypeError, ValueError) as exc:
            return _fail(str(exc))
        missing = [uid for uid in uids if uid not in fake.users]
        if missing:
            return _fail(f"unknown users, e.g. {missing[0]}: create them with /_fake/crowd/users")
        crowd = Crowd(fake, uids, steps, timeout)
        run_id = next(ids)
        runs[run_id] = crowd
        crowd.task = asyncio.get_running_loop().create_task(crowd.run())
        return web.json_response({"run": run_id})

    async def run_status(request: web.Request) -> web.Response:
        crowd = runs.get(int(request.match_info["run_id"]))
        if crowd is None:
            return _fail("unknown run", 404)
        return web.json_response(crowd.status())

    async def stats(request: web.Request) -> web.Response:
        try:
            since = float(request.query.get("since", "0"))
        except ValueError:
            return _fail("since must be a number")
        methods = {m.strip().lower() for m in request.query.get("methods", "").split(",") if m.strip()}
        needles = request.query.getall("contains", [])
        chosen = [c for c in list(fake.calls)
                  if c.at >= since and (not methods or c.method.lower() in methods)]
        containing = sum(1 for c in chosen if any(n in _text_of(c) for n in needles)) if needles else 0
        flood = sum(1 for e in fake.flood_events if e.at >= since)
        return web.json_response({"calls": summary([c.arrived_at or c.at for c in chosen], [c.status for c in chosen]),
                                  "flood": flood, "containing": containing, "now": fake.clock()})

    async def flood_limits(request: web.Request) -> web.Response:
        body = await _json(request)
        flood = fake.flood
        names = ("global_rate", "global_burst", "per_chat_rate", "per_chat_burst")
        try:
            for name in names:
                if name in body:
                    value = float(body[name])
                    if value <= 0:
                        raise ValueError(f"{name} must be > 0")
                    setattr(flood, name, value)
        except (TypeError, ValueError) as exc:
            return _fail(str(exc))
        flood._global = None  # rebuilt with the new capacity on the next send
        flood._chats.clear()
        return web.json_response({name: getattr(flood, name) for name in names})

    app.router.add_post("/_fake/crowd/users", create_users)
    app.router.add_post("/_fake/crowd/run", start_run)
    app.router.add_get("/_fake/crowd/run/{run_id:\\d+}", run_status)
    app.router.add_get("/_fake/stats", stats)
    app.router.add_post("/_fake/flood_limits", flood_limits)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.body_exists else {}
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _fail(message: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "description": message}, status=status)
