"""ChatSender limits with a fake clock, and SafeDownloader's rules against a real loopback server."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import SendChatAction, SendMessage
from aiohttp import web

from bot.delivery import ChatBlockedError, ChatSender, SendFailedError
from bot.downloads import (
    DownloadExpiredError,
    DownloadRefusedError,
    DownloadTooLargeError,
    SafeDownloader,
    host_allowed,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedBot:
    """Stands in for aiogram's Bot: records (time, method) and raises scripted errors."""

    def __init__(self, clock: FakeClock, errors=()) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.sent: list[tuple[float, object]] = []

    async def __call__(self, method):
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((self.clock.now, method))
        return True


def _sender(bot, clock, **kw) -> ChatSender:
    return ChatSender(bot, clock=clock, sleep=clock.sleep, **kw)


async def test_one_message_per_second_per_chat():
    clock = FakeClock()
    bot = ScriptedBot(clock)
    sender = _sender(bot, clock)
    for i in range(3):
        await sender.send(7, SendMessage(chat_id=7, text=str(i)))
    await sender.send(8, SendMessage(chat_id=8, text="other chat"))
    times = [t for t, _ in bot.sent]
    assert times[:3] == [0.0, 1.0, 2.0]
    assert times[3] == 2.0  # another chat is not held back by chat 7
    await sender.send(7, SendChatAction(chat_id=7, action="typing"))
    assert bot.sent[-1][0] == 2.0  # chat actions are not messages


async def test_global_limit_of_thirty_per_second():
    clock = FakeClock()
    bot = ScriptedBot(clock)
    sender = _sender(bot, clock)
    await asyncio.gather(*(sender.send(c, SendMessage(chat_id=c, text="x")) for c in range(45)))
    times = sorted(t for t, _ in bot.sent)
    assert len(times) == 45
    assert max(times[:30]) < 1.0 and min(times[30:]) >= 1.0


async def test_retry_after_is_waited_out_and_nothing_is_lost():
    clock = FakeClock()
    flood = TelegramRetryAfter(method=SendMessage(chat_id=7, text="x"), message="flood", retry_after=5)
    bot = ScriptedBot(clock, errors=[flood, flood])
    sender = _sender(bot, clock, max_wait=60)
    await sender.send(7, SendMessage(chat_id=7, text="hello"))
    assert len(bot.sent) == 1 and bot.sent[0][0] >= 10.0


async def test_long_flood_wait_is_handed_back_to_the_caller():
    clock = FakeClock()
    flood = TelegramRetryAfter(method=SendMessage(chat_id=7, text="x"), message="flood", retry_after=300)
    bot = ScriptedBot(clock, errors=[flood])
    sender = _sender(bot, clock, max_wait=30)
    with pytest.raises(SendFailedError):
        await sender.send(7, SendMessage(chat_id=7, text="hello"))
    assert not bot.sent and sum(clock.sleeps) < 30


async def test_blocked_chat_raises_without_retrying():
    clock = FakeClock()
    blocked = TelegramForbiddenError(method=SendMessage(chat_id=7, text="x"),
                                     message="Forbidden: bot was blocked by the user")
    bot = ScriptedBot(clock, errors=[blocked])
    with pytest.raises(ChatBlockedError):
        await _sender(bot, clock).send(7, SendMessage(chat_id=7, text="hello"))
    assert not bot.errors and not bot.sent


def test_host_allow_list_is_a_suffix_match_on_labels():
    hosts = ["aiquickdraw.com", "127.0.0.1"]
    assert host_allowed("tempfile.aiquickdraw.com", hosts)
    assert host_allowed("aiquickdraw.com", hosts)
    assert not host_allowed("evilaiquickdraw.com", hosts)
    assert not host_allowed("aiquickdraw.com.evil.net", hosts)
    assert not host_allowed("127.0.0.2", hosts)


@pytest.fixture
async def files_server(unused_port):
    app = web.Application()
    body = b"\x89PNG\r\n\x1a\n" + b"0" * 2000

    async def ok(request):
        return web.Response(body=body, content_type="image/png")

    async def gone(request):
        return web.Response(status=403)

    async def to_foreign(request):
        raise web.HTTPFound("http://evil.example/x.png")

    async def to_local(request):
        raise web.HTTPFound("/ok.png")

    async def endless(request):
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        await resp.prepare(request)
        await resp.write(b"\x00\x00\x00\x18ftypmp42")
        for _ in range(100):
            await resp.write(b"1" * 10_000)
        return resp

    app.router.add_get("/ok.png", ok)
    app.router.add_get("/gone.png", gone)
    app.router.add_get("/foreign", to_foreign)
    app.router.add_get("/local", to_local)
    app.router.add_get("/endless", endless)

    async def html_as_png(request):
        return web.Response(body=b"<html><script>alert(1)</script></html>", content_type="image/png")

    app.router.add_get("/html.png", html_as_png)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()
    yield f"http://127.0.0.1:{unused_port}", body
    await runner.cleanup()


async def _read(downloader, url) -> bytes:
    async with downloader.open(url) as d:
        return b"".join([c async for c in d.chunks])


async def test_downloader_follows_same_host_redirects_only(files_server):
    base, body = files_server
    dl = SafeDownloader(["127.0.0.1"], max_bytes=10_000)
    try:
        assert await _read(dl, base + "/ok.png") == body
        assert await _read(dl, base + "/local") == body
        with pytest.raises(DownloadRefusedError):
            await _read(dl, base + "/foreign")
        with pytest.raises(DownloadExpiredError):
            await _read(dl, base + "/gone.png")
        with pytest.raises(DownloadTooLargeError):
            await _read(dl, base + "/endless")  # no Content-Length: capped while streaming
        with pytest.raises(DownloadRefusedError):
            await _read(dl, "file:///etc/passwd")
        # The declared type is not trusted: an HTML page served as image/png is refused.
        with pytest.raises(DownloadRefusedError, match="not an image or a video"):
            await _read(dl, base + "/html.png")
        async with dl.open(base + "/ok.png") as d:
            assert d.content_type == "image/png"
    finally:
        await dl.aclose()


async def test_allowed_name_resolving_to_a_private_address_is_refused(files_server):
    base, _ = files_server
    port = base.rsplit(":", 1)[1]

    async def resolver(host, port):
        return ["10.1.2.3"] if host == "tempfile.aiquickdraw.com" else ["127.0.0.1"]

    dl = SafeDownloader(["aiquickdraw.com", "localhost"], max_bytes=10_000, resolver=resolver)
    try:
        with pytest.raises(DownloadRefusedError, match="private"):
            await _read(dl, f"http://tempfile.aiquickdraw.com:{port}/ok.png")
        # Only a host named exactly in the list may be a private/loopback address.
        with pytest.raises(DownloadRefusedError, match="private"):
            await _read(dl, f"http://sub.localhost:{port}/ok.png")
    finally:
        await dl.aclose()


async def test_readyz_is_503_naming_the_database_when_it_is_down_and_healthz_stays_up(
        unused_port):
    import aiohttp

    from bot.server import build_web_app

    class DownRepository:
        async def queue_depths(self):
            raise ConnectionRefusedError("database is down")

    app = build_web_app(generations=None, repository=DownRepository(), callback_secret="s" * 16,
                        hmac_key=None, media=None)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{unused_port}/readyz") as resp:
                assert resp.status == 503
                body = await resp.json()
                assert body["failing"] == ["database"]
                assert body["checks"]["database"] == "failing: ConnectionRefusedError"
            async with session.get(f"http://127.0.0.1:{unused_port}/healthz") as resp:
                assert resp.status == 200  # liveness: the process is up
    finally:
        await runner.cleanup()


def test_plain_presenter_trims_captions_to_telegram_limits():
    from datetime import UTC, datetime

    from bot.presenter import CAPTION_LIMIT
    from testkit.presenter import PlainPresenter
    from storage.models import Generation

    g = Generation(id=1, user_id=1, chat_id=1, status="failed", task_id=None, kind="image",
                   model_key="seedream_45_t2i", prompt="p" * 5000, error="too slow",
                   cost=8, created_at=datetime.now(UTC))
    presenter = PlainPresenter()
    caption = presenter.result_caption(g, language="en")
    assert len(caption) == CAPTION_LIMIT and caption.endswith("…")
    assert "8⭐ refunded" in presenter.failure(g, language="en").text
    assert "1:05" in presenter.status(g, language="en", position=None, elapsed_s=65).text


@pytest.mark.parametrize("head,expected", [
    (b"\x89PNG\r\n\x1a\n....", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
    (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video/webm"),
    (b"<!doctype html><html>", None),
    (b"", None),
])
def test_sniff_media_type(head, expected):
    from bot.downloads import sniff_media_type

    assert sniff_media_type(head) == expected


async def test_a_stage_whose_batches_stay_full_stops_after_a_few_passes():
    """Rows that fail fast and stay claimable must not make a stage spin without pause."""
    from bot.jobs import MAX_IMMEDIATE_PASSES, JobRunner

    class AlwaysFullService:
        def __init__(self):
            self.passes = 0

        async def run_pass(self, stage):
            self.passes += 1
            return 20

        async def run_progress(self):  # the progress job is not started in this test
            return None

    service = AlwaysFullService()
    runner = JobRunner(service, interval_s=3600, batch_size=20)
    runner._started = True  # kick without the scheduler: exactly the path a callback takes
    runner.kick("store")
    await runner.drain(timeout=5)
    assert service.passes == MAX_IMMEDIATE_PASSES


async def test_timed_out_send_is_handed_back_not_resent_but_an_edit_is_retried():
    """An upload that timed out may have reached the chat: resending at once could duplicate."""
    from aiogram.exceptions import TelegramNetworkError
    from aiogram.methods import EditMessageText

    clock = FakeClock()
    method = SendMessage(chat_id=7, text="x")
    bot = ScriptedBot(clock, errors=[TelegramNetworkError(method=method, message="timeout")])
    with pytest.raises(SendFailedError):
        await _sender(bot, clock).send(7, SendMessage(chat_id=7, text="result"))
    assert not bot.sent and not bot.errors  # exactly one attempt

    edit = EditMessageText(chat_id=7, message_id=1, text="status")
    bot = ScriptedBot(clock, errors=[TelegramNetworkError(method=edit, message="timeout")])
    await _sender(bot, clock).send(7, edit)
    assert len(bot.sent) == 1  # editing twice shows nothing twice: retried


async def test_entity_too_large_is_final_not_retried():
    from aiogram.exceptions import TelegramEntityTooLarge

    clock = FakeClock()
    method = SendMessage(chat_id=7, text="x")
    bot = ScriptedBot(clock, errors=[TelegramEntityTooLarge(method=method, message="too large")] * 3)
    with pytest.raises(TelegramEntityTooLarge):
        await _sender(bot, clock).send(7, SendMessage(chat_id=7, text="big"))
    assert len(bot.errors) == 2  # one attempt only
