"""/broadcast end to end (the real app, the fake Telegram with its flood limits): compose →
link button → audience → preview → send; only the audience gets it, exactly once; pause, resume
and cancel; a crash mid-broadcast sends no second copy and a new process finishes the rest;
blocked users are marked and not retried; no 429 ever; the admin's final report."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from handlers.texts import tr
from storage.schema import broadcasts
from testkit.scripted import see_button
from testkit.stack import LocalStack
from tests.e2e.conversation.conftest import ADMIN_ID, click, png_bytes, seen

BODY = "Big news: Veo 3.1 is here"


def broadcast_stack(tmp_path, **settings) -> LocalStack:
    # chat_burst 30: the admin's own chat gets a handful of replies within a second here (the
    # compose steps); every recipient gets one message, so that burst never matters for them.
    values = {"ADMIN_IDS": str(ADMIN_ID), "SIGNUP_BONUS": "50",
              "BROADCAST_PROGRESS_SECONDS": "0.5", **settings}
    return LocalStack(tmp_path, webhook=True, telegram_options={"chat_burst": 30},
                      settings=values)


async def people(stack, spec) -> None:
    """Users who started the bot: (id, language, balance), registered as the bot would."""
    for uid, lang, balance in spec:
        stack.telegram.user(uid, first_name=f"U{uid}", language_code=lang)
        await stack.app.repository.register_user(uid, username=None, first_name=f"U{uid}",
                                                 last_name=None, language=lang,
                                                 signup_bonus=balance)


def copies(stack, uid: int, body: str = BODY) -> list:
    user = stack.telegram.user(uid)
    return [e for e in user.transcript if e.from_bot and body in e.text]


async def compose(admin, lang: str, *, photo: bytes | None = None, button: str | None = None):
    await admin.send_command("/broadcast")
    await seen(admin, tr(lang, "bc_compose"))
    if photo is not None:
        await admin.send_photo(photo, caption=BODY)
    else:
        await admin.send_text(BODY)
    await seen(admin, tr(lang, "bc_button_ask")[:30])
    if button is None:
        await click(admin, tr(lang, "bc_btn_skip"))
    else:
        await admin.send_text(button)
    await seen(admin, tr(lang, "bc_segment_ask"))


async def report_of(stack, admin, lang: str, broadcast_id: int = 1) -> str:
    head = tr(lang, "bc_report", id=broadcast_id, sent=0, blocked=0, failed=0).splitlines()[0]
    return (await seen(admin, head, timeout=60)).text


async def broadcast_row(stack) -> dict:
    async with stack.app.engine.connect() as conn:
        return dict((await conn.execute(sa.select(broadcasts).order_by(broadcasts.c.id.desc())
                                        .limit(1))).one()._mapping)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_compose_preview_and_send_to_a_segment_once(tmp_path, lang):
    async with broadcast_stack(tmp_path) as stack:
        tg = stack.telegram
        rich = [(7000 + i, "en" if i % 2 else "ru", 150) for i in range(40)]
        poor = [(7100 + i, "en", 20) for i in range(5)]
        await people(stack, rich + poor)
        admin = tg.user(ADMIN_ID, first_name="Root", language_code=lang)
        await compose(admin, lang, button="Try it | https://example.com/veo")
        # A bad number is refused politely; the step waits for a good one.
        await click(admin, tr(lang, "bc_btn_seg_balance"))
        await seen(admin, tr(lang, "bc_ask_balance"))
        await admin.send_text("lots")
        await seen(admin, tr(lang, "bc_bad_number", low=0, high=10**9))
        await admin.send_text("100")
        card = await seen(admin, tr(lang, "bc_preview", segment=tr(lang, "bc_seg_balance", n=100),
                                    n=40))
        # The preview is exactly what users get: the text and the link button.
        [preview] = copies(stack, ADMIN_ID)
        assert preview.buttons == [["Try it"]]
        assert preview.raw["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://example.com/veo"
        assert card.buttons == [[tr(lang, "bc_btn_send", n=40), tr(lang, "btn_cancel")]]
        await click(admin, tr(lang, "bc_btn_send", n=40))
        report = await report_of(stack, admin, lang)
        assert report == tr(lang, "bc_report", id=1, sent=40, blocked=0, failed=0)
        for uid, _, _ in rich:
            [got] = copies(stack, uid)
            assert got.raw["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://example.com/veo"
        for uid, _, _ in poor:
            assert copies(stack, uid) == []
        # The card ends with the final numbers and no buttons.
        final = await seen(admin, tr(lang, "bc_card_done", id=1, segment=""))
        assert tr(lang, "bc_progress", done=40, total=40, sent=40, blocked=0, failed=0) in final.text
        assert final.buttons == []
        # Send again (a double tap, a replayed update) starts nothing twice.
        assert not await stack.app.dispatcher["broadcasts"].start(1, card_message_id=card.message_id)
        for _ in range(2):
            await stack.app.broadcaster.run()
        await stack.settle()
        assert all(len(copies(stack, uid)) == 1 for uid, _, _ in rich)
        assert len([e for e in admin.transcript if e.text.startswith(report[:10])]) == 1
        assert tg.flood_events == []  # 40 messages in about two seconds, never a 429


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_pause_resume_and_cancel(tmp_path, lang):
    async with broadcast_stack(tmp_path, BROADCAST_PER_SECOND="4") as stack:
        tg = stack.telegram
        audience = [(7200 + i, lang, 0) for i in range(30)]
        await people(stack, audience)
        admin = tg.user(ADMIN_ID, first_name="Root", language_code=lang)
        await compose(admin, lang)
        await click(admin, tr(lang, f"bc_btn_seg_{lang}"))
        n = 31  # the admin speaks the language too
        await click(admin, tr(lang, "bc_btn_send", n=n))
        await see_button(admin, tr(lang, "bc_btn_pause"))
        await admin.wait_until(lambda _: sum(len(copies(stack, u)) for u, _, _ in audience) >= 2)
        await click(admin, tr(lang, "bc_btn_pause"))
        await seen(admin, tr(lang, "bc_card_paused", id=1))
        await see_button(admin, tr(lang, "bc_btn_resume"))

        # Once the worker has let go of it, a paused broadcast sends nothing, however many
        # passes run.
        async def released() -> bool:
            row = await broadcast_row(stack)
            return row["state"] == "paused" and row["lease_owner"] is None
        while not await released():
            await stack.app.broadcaster.run()
        await tg.wait_idle()
        got = {u: len(copies(stack, u)) for u, _, _ in audience}
        for _ in range(3):
            await stack.app.broadcaster.run()
        await tg.wait_idle()
        assert {u: len(copies(stack, u)) for u, _, _ in audience} == got
        assert 2 <= sum(got.values()) < n

        await click(admin, tr(lang, "bc_btn_resume"))
        await see_button(admin, tr(lang, "bc_btn_pause"))
        before = sum(got.values())
        await admin.wait_until(
            lambda _: sum(len(copies(stack, u)) for u, _, _ in audience) >= before + 2)
        card = await seen(admin, tr(lang, "bc_card_running", id=1, segment="")[:12])
        await admin.tap(tr(lang, "btn_cancel"), card)
        report = await report_of(stack, admin, lang)
        await stack.settle()
        # The admin is in the audience too; their first copy was the preview.
        sent = (sum(len(copies(stack, u)) for u, _, _ in audience)
                + len(copies(stack, ADMIN_ID)) - 1)
        assert all(len(copies(stack, u)) <= 1 for u, _, _ in audience)
        assert report.startswith(tr(lang, "bc_report", id=1, sent=sent, blocked=0, failed=0))
        assert tr(lang, "bc_report_unsent", n=n - sent) in report
        assert sent < n
        assert tg.flood_events == []


async def test_a_crash_mid_broadcast_sends_no_second_copy_and_a_new_process_finishes(tmp_path):
    lang = "ru"
    async with broadcast_stack(tmp_path, BROADCAST_PER_SECOND="10",
                               BROADCAST_LEASE_SECONDS="3") as stack:
        tg = stack.telegram
        audience = [(7300 + i, "en", 0) for i in range(30)]
        await people(stack, audience)
        admin = tg.user(ADMIN_ID, first_name="Root", language_code=lang)
        await compose(admin, lang, photo=png_bytes())
        await click(admin, tr(lang, "bc_btn_seg_en"))
        n = 30
        await see_button(admin, tr(lang, "bc_btn_send", n=n))  # after the preview (a photo)
        # The recipients' photos are held at Telegram: the process dies with a batch sent but
        # not yet answered, so its rows are still "sending" in the database.
        tg.faults.hold({"sendPhoto"})
        await admin.tap(tr(lang, "bc_btn_send", n=n))
        await tg.notifier.wait_for(
            lambda: sum(c.method == "sendPhoto" for c in tg.calls_in_progress) >= 10 or None,
            20, "a held batch")
        await stack.app.jobs.stop(grace_s=0)  # the crash: the pass is cut off mid-send
        await stack.stop_app()
        tg.faults.release()  # Telegram delivers what it had received
        await tg.wait_idle()
        delivered_before = {u for u, _, _ in audience if copies(stack, u)}
        assert len(delivered_before) == 10  # the held batch did reach its chats

        await stack.start_app()  # a new process, the same database
        report = await report_of(stack, admin, lang)
        await stack.settle()
        states = await stack.app.repository.broadcast_recipients_of(1)
        unknown = {u for u, s in states.items() if s == "unknown"}
        assert delivered_before <= unknown and len(unknown) == 10  # one batch, never resent
        for uid, _, _ in audience:
            assert len(copies(stack, uid)) == (0 if uid in unknown - delivered_before else 1)
            if uid not in unknown:
                assert states[uid] == "sent"
        assert report == "\n".join([
            tr(lang, "bc_report", id=1, sent=n - 10, blocked=0, failed=0),
            tr(lang, "bc_report_unknown", n=10)])
        assert tg.flood_events == []


async def test_blocked_users_are_marked_and_not_retried(tmp_path):
    lang = "en"
    async with broadcast_stack(tmp_path) as stack:
        tg = stack.telegram
        audience = [(7400 + i, "ru", 0) for i in range(6)]
        await people(stack, audience)
        gone = (7401, 7404)
        for uid in gone:  # blocked without the bot hearing of it: it learns from the 403
            tg.chats[uid].blocked = True
        admin = tg.user(ADMIN_ID, first_name="Root", language_code=lang)
        await compose(admin, lang)
        await click(admin, tr(lang, "bc_btn_seg_ru"))
        await click(admin, tr(lang, "bc_btn_send", n=6))
        report = await report_of(stack, admin, lang)
        assert report == tr(lang, "bc_report", id=1, sent=4, blocked=2, failed=0)
        await stack.settle()
        for uid in gone:
            assert (await stack.app.repository.get_user(uid)).blocked is True
            tries = [c for c in tg.calls if c.method == "sendMessage"
                     and c.params.get("chat_id") == uid]
            assert [c.status for c in tries] == [403]  # once, no retry storm
        states = await stack.app.repository.broadcast_recipients_of(1)
        assert {u for u, s in states.items() if s == "blocked"} == set(gone)
        # A later broadcast leaves them out.
        await compose(admin, lang)
        await click(admin, tr(lang, "bc_btn_seg_ru"))
        await see_button(admin, tr(lang, "bc_btn_send", n=4))
        assert tg.flood_events == []


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_bad_input_while_composing_gets_a_polite_answer(tmp_path, lang):
    async with broadcast_stack(tmp_path) as stack:
        admin = stack.telegram.user(ADMIN_ID, first_name="Root", language_code=lang)
        await admin.send_command("/broadcast")
        await seen(admin, tr(lang, "bc_compose"))
        await admin.send_sticker()
        await seen(admin, tr(lang, "bc_bad_content"))
        await admin.send_text(BODY)
        await admin.send_text("just some words")
        await seen(admin, tr(lang, "bc_bad_button")[:25])
        await admin.send_text("Go | ftp://nowhere")
        await admin.wait_until(lambda t: len([e for e in t if e.from_bot
                                              and e.text == tr(lang, "bc_bad_button")]) == 2)
        await click(admin, tr(lang, "btn_cancel"))
        await seen(admin, tr(lang, "bc_aborted"))
        await stack.settle()
        assert await stack.app.repository.get_broadcast(1) is None
        # Not an admin: /broadcast does not exist for them.
        ann = stack.telegram.user(7500, first_name="Ann", language_code=lang)
        await ann.send_command("/broadcast")
        await stack.settle()
        assert not any(tr(lang, "bc_compose") in e.text for e in ann.transcript)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    # A sync fixture picks the database: an async one asked for by name from inside the running
    # loop could not start its own.
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'kiebot.sqlite3'}"
    return request.getfixturevalue("pg_database")


async def test_two_workers_send_beside_a_web_process_each_recipient_once(tmp_path, database_url):
    """The web process takes the admin's taps; broadcasts go out from worker processes only
    (the jobs run there), and with two of them on one database the lease and the per-row claim
    still give every recipient exactly one copy."""
    from kiebot.app import build_app
    from tests.conftest import free_port

    lang = "en"
    async with broadcast_stack(tmp_path, PROCESS_ROLE="web", BROADCAST_LEASE_SECONDS="3",
                               DATABASE_URL=database_url) as stack:
        tg = stack.telegram
        assert not stack.app.jobs.started  # the web role runs no jobs
        workers = []
        try:
            for _ in range(2):
                settings = stack.settings.model_copy(update={"server_port": free_port()})
                worker = build_app(settings, role="worker")
                await worker.start()
                workers.append(worker)
            audience = [(7600 + i, "ru", 0) for i in range(45)]
            await people(stack, audience)
            admin = tg.user(ADMIN_ID, first_name="Root", language_code=lang)
            await compose(admin, lang)
            await click(admin, tr(lang, "bc_btn_seg_ru"))
            await click(admin, tr(lang, "bc_btn_send", n=45))
            report = await report_of(stack, admin, lang)
            assert report == tr(lang, "bc_report", id=1, sent=45, blocked=0, failed=0)
            await tg.wait_idle()
            assert all(len(copies(stack, uid)) == 1 for uid, _, _ in audience)
            assert tg.flood_events == []
        finally:
            for worker in workers:
                await worker.stop()


@pytest.mark.parametrize("retry_after", [1, 4])
async def test_429s_are_waited_out_and_nobody_gets_two(tmp_path, retry_after):
    """Telegram's retry_after is honoured: a short one is waited out by the sender, a long one
    (past what the sender may wait) hands the row back for a later pass; either way each
    recipient gets one copy and the report counts no failure."""
    lang = "ru"
    async with broadcast_stack(tmp_path) as stack:
        tg = stack.telegram
        audience = [(7700 + i, "en", 0) for i in range(8)]
        await people(stack, audience)
        admin = tg.user(ADMIN_ID, first_name="Root", language_code=lang)
        await compose(admin, lang)
        await click(admin, tr(lang, "bc_btn_seg_en"))
        await see_button(admin, tr(lang, "bc_btn_send", n=8))
        tg.faults.flood_next(2, retry_after=retry_after)
        await admin.tap(tr(lang, "bc_btn_send", n=8))
        report = await report_of(stack, admin, lang)
        assert report == tr(lang, "bc_report", id=1, sent=8, blocked=0, failed=0)
        await stack.settle()
        assert all(len(copies(stack, uid)) == 1 for uid, _, _ in audience)
        # Only the two refusals the test asked for; none of the bot's own making.
        assert [e.reason for e in tg.flood_events] == ["fault", "fault"]
        refused = {e.chat_id for e in tg.flood_events}
        for uid in refused:  # each refused chat was tried again after its wait, once
            tries = [c for c in tg.calls if c.method == "sendMessage"
                     and c.params.get("chat_id") == uid]
            assert [c.status for c in tries][-1] == 200
            assert tries[-1].at - tries[0].at >= retry_after - 0.05


async def test_a_clean_restart_mid_broadcast_goes_on_where_it_stopped(tmp_path):
    """Stopping the app lets the pass under way finish its batch and hand the broadcast back;
    a new app on the same database sends the rest, each recipient once, nothing unknown."""
    lang = "en"
    async with broadcast_stack(tmp_path, BROADCAST_PER_SECOND="4") as stack:
        tg = stack.telegram
        audience = [(7800 + i, "ru", 0) for i in range(12)]
        await people(stack, audience)
        admin = tg.user(ADMIN_ID, first_name="Root", language_code=lang)
        await compose(admin, lang)
        await click(admin, tr(lang, "bc_btn_seg_ru"))
        await click(admin, tr(lang, "bc_btn_send", n=12))
        await admin.wait_until(lambda _: sum(len(copies(stack, u)) for u, _, _ in audience) >= 2)
        await stack.stop_app()
        stopped_at = sum(len(copies(stack, u)) for u, _, _ in audience)
        assert stopped_at < 12  # stopped mid-broadcast
        await stack.start_app()
        report = await report_of(stack, admin, lang)
        assert report == tr(lang, "bc_report", id=1, sent=12, blocked=0, failed=0)
        await stack.settle()
        assert all(len(copies(stack, u)) == 1 for u, _, _ in audience)
        assert tg.flood_events == []
