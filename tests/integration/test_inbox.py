"""The update inbox end to end within one process: the webhook route on loopback (secret, bad
bodies, 200 only once stored, group commit) and the drainer feeding a real aiogram Dispatcher
(one chat in order, chats concurrently and bounded, marks, failures)."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message
from aiohttp import web

from bot.inbox import InboxDrainer, InboxWriter, webhook_handler
from bot.server import WEBHOOK_PATH, build_web_app
from migrations.runner import upgrade
from storage.db import create_engine
from storage.repository import Repository
from tests.conftest import wait_until

SECRET = "s3cret-token"
TOKEN = "42:TEST-token-for-the-inbox"


@pytest.fixture
async def repo(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inbox.sqlite3'}")
    await upgrade(engine)
    try:
        yield Repository(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def bot():
    bot = Bot(TOKEN)
    try:
        yield bot
    finally:
        await bot.session.close()


def message_update(update_id: int, chat: int, text: str) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_764_000_000, "text": text,
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "U"}}}


class Recorder:
    """A router whose message handler logs enter/exit per text and waits on a gate when the
    text is in `gated` (released by the test)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.inside: set[str] = set()
        self.most_inside = 0
        self.gates: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.gated: set[str] = set()
        self.fail: set[str] = set()

    def dispatcher(self) -> Dispatcher:
        dp = Dispatcher()
        router = Router()

        async def handle(message: Message) -> None:
            text = message.text or ""
            self.events.append(("enter", text))
            self.inside.add(text)
            self.most_inside = max(self.most_inside, len(self.inside))
            try:
                if text in self.gated:
                    await self.gates[text].wait()
                if text in self.fail:
                    raise RuntimeError("handler bug")
            finally:
                self.inside.discard(text)
                self.events.append(("exit", text))

        router.message.register(handle)
        dp.include_router(router)
        return dp

    def index(self, phase: str, text: str) -> int:
        return self.events.index((phase, text))


async def _serve(app: web.Application):
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 (port 0: ask the socket)
    return runner, f"http://127.0.0.1:{port}{WEBHOOK_PATH}"


@pytest.fixture
async def intake(repo):
    """The real route: build_web_app with the inbox's webhook handler, on loopback."""
    stored: list[int] = []
    writer = InboxWriter(repo, on_stored=lambda: stored.append(1))
    app = build_web_app(generations=None, repository=repo, callback_secret="x" * 32,
                        hmac_key=None, media=None,
                        webhook=webhook_handler(writer, secret_token=SECRET))
    runner, url = await _serve(app)
    try:
        async with aiohttp.ClientSession() as http:
            yield http, url, writer
    finally:
        await runner.cleanup()


async def _post(http, url, body, secret=SECRET):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with http.post(url, data=data, headers=headers) as resp:
        return resp.status, await resp.text()


async def test_webhook_checks_the_secret_and_rejects_bad_bodies_with_a_reason(intake, repo):
    http, url, _ = intake
    update = message_update(7, 100, "/start")
    assert (await _post(http, url, update, secret=None))[0] == 401
    assert (await _post(http, url, update, secret="wrong"))[0] == 401
    for body, reason in [(b"{not json", "body is not JSON"), (b"\xff\xfe", "body is not JSON"),
                         ("[1, 2]", "update is not a JSON object"),
                         ({"update_id": "7"}, "update_id missing or not an integer"),
                         ({"message": {}}, "update_id missing or not an integer")]:
        status, text = await _post(http, url, body)
        assert status == 400 and json.loads(text)["reason"] == reason, (body, status, text)
    assert await repo.inbox_unhandled() == 0
    assert (await _post(http, url, update))[0] == 200
    assert (await _post(http, url, update))[0] == 200  # Telegram's redelivery: stored once
    assert await repo.inbox_unhandled() == 1
    [row] = await repo.inbox_claim(owner="t", lease_seconds=30, limit=10)
    assert row.chat_key == 100 and json.loads(row.payload) == update


async def test_webhook_answers_only_once_stored_and_concurrent_updates_share_a_commit(
        intake, repo):
    http, url, writer = intake
    calls: list[int] = []
    first_write = asyncio.Event()
    original = repo.inbox_add

    async def held_add(rows, **kwargs):
        calls.append(len(rows))
        if len(calls) == 1:
            await first_write.wait()
        return await original(rows, **kwargs)

    repo.inbox_add = held_add
    post = lambda i: asyncio.create_task(_post(http, url, message_update(i, 1000 + i, "hi")))  # noqa: E731
    posts = [post(1)]
    await wait_until(lambda: calls == [1])
    posts += [post(i) for i in range(2, 21)]
    # The first request's transaction is held; the other 19 arrive meanwhile and wait for the
    # next one. None of the 20 has its answer: nothing is acknowledged before it is stored.
    await wait_until(lambda: writer.waiting == 19)
    assert not any(p.done() for p in posts)
    first_write.set()
    assert [status for status, _ in await asyncio.gather(*posts)] == [200] * 20
    assert calls == [1, 19]
    assert await repo.inbox_unhandled() == 20


async def test_a_failed_write_is_not_acknowledged(intake, repo):
    http, url, _ = intake

    async def broken(rows, **kwargs):
        raise RuntimeError("database down")

    repo.inbox_add = broken
    status, _ = await _post(http, url, message_update(9, 1, "hi"))
    assert status == 503  # Telegram delivers it again later


async def test_the_webhook_hands_its_validated_update_to_the_drainer(repo, bot):
    """The drainer of the process that validated an update at the webhook dispatches that very
    object (not a second parse of the stored JSON); the row is still what makes it durable."""
    seen: list = []
    dp = Dispatcher()
    router = Router()

    async def handle(message: Message) -> None:
        seen.append(message)

    router.message.register(handle)
    dp.include_router(router)
    drainer = InboxDrainer(repo, dp, bot, owner="me", concurrency=4, lease_seconds=30)
    writer = InboxWriter(repo, on_stored=drainer.wake)
    handed: list = []
    original_put = drainer.parsed.put
    drainer.parsed.put = lambda update_id, update: (handed.append(update), original_put(update_id, update))
    app = build_web_app(generations=None, repository=repo, callback_secret="x" * 32,
                        hmac_key=None, media=None,
                        webhook=webhook_handler(writer, secret_token=SECRET, bot=bot,
                                                parsed=drainer.parsed))
    runner, url = await _serve(app)
    drainer.start()
    try:
        async with aiohttp.ClientSession() as http:
            assert (await _post(http, url, message_update(31, 300, "hello")))[0] == 200
        await wait_until(lambda: len(seen) == 1)
        assert seen[0] is handed[0].message and seen[0].bot is bot
        assert len(drainer.parsed) == 0
    finally:
        await drainer.stop()
        await runner.cleanup()


async def _store(repo, updates):
    await repo.inbox_add([(u["update_id"], u["message"]["chat"]["id"], json.dumps(u))
                          for u in updates])


async def test_one_chat_in_order_while_other_chats_go_on(repo, bot):
    rec = Recorder()
    rec.gated = {"a1"}
    drainer = InboxDrainer(repo, rec.dispatcher(), bot, owner="me", concurrency=8,
                           lease_seconds=30)
    await _store(repo, [message_update(1, 10, "a1"), message_update(2, 10, "a2"),
                        message_update(3, 20, "b1"), message_update(4, 10, "a3"),
                        message_update(5, 20, "b2")])
    drainer.start()
    try:
        # Chat 20 is handled to the end while chat 10's first update is still inside.
        await wait_until(lambda: ("exit", "b2") in rec.events and "a1" in rec.inside)
        assert ("enter", "a2") not in rec.events
        rec.gates["a1"].set()
        await wait_until(lambda: ("exit", "a3") in rec.events)
        assert (rec.index("exit", "a1") < rec.index("enter", "a2")
                < rec.index("exit", "a2") < rec.index("enter", "a3"))
        assert rec.index("exit", "b1") < rec.index("enter", "b2")
        await wait_until(lambda: not drainer.busy)
        assert await repo.inbox_unhandled() == 0
        assert [e for e in rec.events if e[0] == "enter"].count(("enter", "a1")) == 1
    finally:
        await drainer.stop(grace_s=5)


async def test_chats_run_concurrently_up_to_the_bound(repo, bot):
    rec = Recorder()
    texts = [f"c{i}" for i in range(6)]
    rec.gated = set(texts)
    drainer = InboxDrainer(repo, rec.dispatcher(), bot, owner="me", concurrency=3,
                           lease_seconds=30)
    await _store(repo, [message_update(i + 1, 100 + i, t) for i, t in enumerate(texts)])
    drainer.start()
    try:
        await wait_until(lambda: len(rec.inside) == 3)  # serialised, this would stay at 1
        for t in texts:
            rec.gates[t].set()
        await wait_until(lambda: sum(1 for e in rec.events if e[0] == "exit") == 6)
        assert rec.most_inside == 3
        await wait_until(lambda: not drainer.busy)
        assert await repo.inbox_unhandled() == 0
    finally:
        await drainer.stop(grace_s=5)


async def test_a_failing_update_is_logged_marked_and_does_not_block_its_chat(repo, bot):
    rec = Recorder()
    rec.fail = {"boom"}
    drainer = InboxDrainer(repo, rec.dispatcher(), bot, owner="me", concurrency=4,
                           lease_seconds=30)
    await _store(repo, [message_update(1, 10, "boom"), message_update(2, 10, "after")])
    drainer.start()
    try:
        await wait_until(lambda: ("exit", "after") in rec.events)
        await wait_until(lambda: not drainer.busy)
        assert await repo.inbox_unhandled() == 0
    finally:
        await drainer.stop(grace_s=5)


async def test_an_update_that_keeps_killing_its_process_is_given_up(repo, bot):
    rec = Recorder()
    await _store(repo, [message_update(1, 10, "poison"), message_update(2, 10, "next")])
    # Five processes claimed it and died (their leases ran out at once here).
    for i in range(5):
        await repo.inbox_claim(owner=f"dead{i}", lease_seconds=0, limit=1)
    drainer = InboxDrainer(repo, rec.dispatcher(), bot, owner="me", concurrency=4,
                           lease_seconds=30)
    drainer.start()
    try:
        await wait_until(lambda: ("exit", "next") in rec.events)
        await wait_until(lambda: not drainer.busy)
        assert ("enter", "poison") not in rec.events
        assert await repo.inbox_unhandled() == 0
    finally:
        await drainer.stop(grace_s=5)


async def test_stop_hands_unstarted_updates_back(repo, bot):
    rec = Recorder()
    rec.gated = {"held"}
    drainer = InboxDrainer(repo, rec.dispatcher(), bot, owner="me", concurrency=1,
                           lease_seconds=30)
    await _store(repo, [message_update(1, 10, "held"), message_update(2, 20, "waiting")])
    drainer.start()
    await wait_until(lambda: "held" in rec.inside)
    stopping = asyncio.create_task(drainer.stop(grace_s=30))
    await wait_until(lambda: drainer._stopping)  # noqa: SLF001 (the stop has begun)
    rec.gates["held"].set()
    await stopping
    assert ("enter", "waiting") not in rec.events
    # "held" finished and was marked; "waiting" is free for the next process at once.
    [row] = await repo.inbox_claim(owner="next", lease_seconds=30, limit=10)
    assert row.update_id == 2


async def test_a_backlog_longer_than_the_claim_bound_is_drained(repo, bot):
    """Concurrency 1 claims at most 4 updates ahead; 30 waiting are all handled, each chat's in
    order, with no interval to fall back on: handlers finishing wake the next claim."""
    rec = Recorder()
    drainer = InboxDrainer(repo, rec.dispatcher(), bot, owner="me", concurrency=1,
                           lease_seconds=30, poll_interval_s=3600)  # only wakes, no interval
    await _store(repo, [message_update(i, 100 + i % 3, f"m{i}") for i in range(1, 31)])
    drainer.start()
    try:
        await wait_until(lambda: sum(1 for e in rec.events if e[0] == "exit") == 30)
        entered = [int(t[1:]) for phase, t in rec.events if phase == "enter"]
        assert sorted(entered) == list(range(1, 31))
        for chat in range(3):  # each chat's own updates in order
            mine = [i for i in entered if i % 3 == chat]
            assert mine == sorted(mine)
        assert rec.most_inside == 1
        await wait_until(lambda: not drainer.busy)
        assert await repo.inbox_unhandled() == 0
    finally:
        await drainer.stop(grace_s=5)


# -- long polling through the inbox ----------------------------------------------------------

@pytest.fixture
async def fake_telegram():
    from testkit.telegram import FakeTelegram

    async with FakeTelegram(token=TOKEN, flood_control=False) as server:
        yield server


async def test_polling_confirms_a_batch_only_after_it_is_stored(repo, fake_telegram):
    """getUpdates → store → next offset: a poller stopped while its batch is being stored has
    not confirmed it, so the next poller gets the same updates again (stored once)."""
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bot.inbox import InboxPoller

    fake = fake_telegram
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    held = asyncio.Event()
    writes: list[list[int]] = []
    original = repo.inbox_add

    async def held_add(rows, **kwargs):
        writes.append([r[0] for r in rows])
        await held.wait()
        return await original(rows, **kwargs)

    repo.inbox_add = held_add
    writer = InboxWriter(repo, on_stored=lambda: None)
    ann = fake.user(501, first_name="Ann")
    await ann.send_text("one")
    await ann.send_text("two")
    try:
        first = InboxPoller(bot, writer, allowed_updates=["message"], timeout=1)
        first.start()
        await wait_until(lambda: writes)
        first_ids = writes[0]
        await first.stop()  # dies while storing: nothing confirmed
        assert [u["update_id"] for u in fake.updates.pending] == first_ids

        held.set()
        second = InboxPoller(bot, writer, allowed_updates=["message"], timeout=1)
        second.start()
        # Stored, then confirmed by the next getUpdates' offset: Telegram's queue empties.
        await wait_until(lambda: not fake.updates.pending)
        await second.stop()
        assert await repo.inbox_unhandled() == 2
        rows = await repo.inbox_claim(owner="t", lease_seconds=30, limit=10)
        assert [r.update_id for r in rows] == first_ids
        assert [json.loads(r.payload)["message"]["text"] for r in rows] == ["one", "two"]
        assert rows[0].chat_key == 501
    finally:
        await bot.session.close()
