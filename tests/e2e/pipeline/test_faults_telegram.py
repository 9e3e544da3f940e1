"""Telegram misbehaving: a 429 storm, and a user who blocked the bot."""

from __future__ import annotations


from tests.conftest import wait_until
from tests.e2e.pipeline.helpers import make_user, media_messages, plain_stack, start, wait_final


def _sends_to(stack, chat_id: int, methods=("sendPhoto", "sendDocument", "sendVideo")) -> int:
    return sum(
        1 for c in stack.telegram.calls
        if c.method in methods and str(c.params.get("chat_id")) == str(chat_id)
    )


async def test_flood_storm_delays_but_loses_nothing(tmp_path):
    async with plain_stack(tmp_path) as stack:
        users = [await make_user(stack, uid) for uid in (201, 202, 203)]
        started = [await start(stack, uid, card=False) for uid in (201, 202, 203)]
        stack.telegram.faults.flood_for(2.5, retry_after=1)
        for s in started:
            g = await wait_final(stack, s.generation.id, timeout=30)
            assert g.status == "succeeded"
        await stack.settle()
        for tg in users:
            assert len(media_messages(tg)) == 1
        assert any(c.status == 429 for c in stack.telegram.calls)


async def test_blocked_user_is_marked_and_not_retried(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack, 301)
        started = await start(stack, 301, card=False)
        tg.block()
        g = await wait_final(stack, started.generation.id, delivered=False)
        assert g.status == "succeeded"

        async def marked():
            user = await stack.app.repository.get_user(301)
            return user.blocked

        await wait_until(marked, timeout=10)
        # Told by my_chat_member, the bot does not even try; told only by a 403, it tried once.
        attempts = _sends_to(stack, 301)
        assert attempts <= 1
        await stack.settle()  # more deliverer passes: no further attempt
        assert _sends_to(stack, 301) == attempts
        g = await stack.app.repository.get_generation(g.id)
        assert g.delivered_at is None  # kept for when they come back

        tg.unblock()  # my_chat_member "member": the waiting result goes out now
        g = await wait_final(stack, g.id)
        assert g.delivered_at is not None
        await wait_until(lambda: len(media_messages(tg)) == 1, timeout=10)
        assert not (await stack.app.repository.get_user(301)).blocked


async def test_blocked_user_found_by_a_403_gets_the_result_after_writing_again(tmp_path):
    async with plain_stack(tmp_path) as stack:
        tg = await make_user(stack, 302)
        started = await start(stack, 302, card=False)
        tg.chat.blocked = True  # no my_chat_member: the bot learns it from the 403
        g = await wait_final(stack, started.generation.id, delivered=False)

        async def marked():
            return (await stack.app.repository.get_user(302)).blocked

        await wait_until(marked, timeout=10)
        assert _sends_to(stack, 302) == 1
        tg.chat.blocked = False  # unblocked; again the update is lost
        await tg.send_text("hello again")  # any update from the user clears `blocked`
        g = await wait_final(stack, g.id)
        await wait_until(lambda: len(media_messages(tg)) == 1, timeout=10)
        assert _sends_to(stack, 302) == 2


async def test_content_telegram_refuses_for_good_becomes_a_link_once(tmp_path):
    """A 400 never changes on retry: the result goes out as a link, once, and is recorded."""
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

    from testkit.presenter import PlainPresenter

    class RefusedMarkupPresenter(PlainPresenter):
        def result_markup(self, generation, *, language):
            # 65 bytes of callback data: Telegram answers 400 to every send carrying it.
            bad = InlineKeyboardButton(text="Again", callback_data="x" * 65)
            return InlineKeyboardMarkup(inline_keyboard=[[bad]])

    async with plain_stack(tmp_path, presenter=RefusedMarkupPresenter()) as stack:
        tg = await make_user(stack, 401)
        started = await start(stack, 401, card=False)
        g = await wait_final(stack, started.generation.id, timeout=30)
        assert g.status == "succeeded" and g.delivered_at is not None
        refused = [c for c in stack.telegram.calls
                   if c.method in ("sendPhoto", "sendDocument") and c.status == 400]
        assert len(refused) == 2  # the photo, then the document fallback
        await wait_until(lambda: any("/media/" in (e.text or "") for e in tg.bot_messages),
                         timeout=10)
        await stack.settle()  # more deliverer passes: nothing is sent again
        assert len([c for c in stack.telegram.calls
                    if c.method in ("sendPhoto", "sendDocument")]) == 2
        assert sum("/media/" in (e.text or "") for e in tg.bot_messages) == 1
