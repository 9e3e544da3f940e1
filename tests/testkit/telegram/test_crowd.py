"""The benchmark's knobs on the fake Telegram (testkit/telegram/crowd.py) over real loopback
HTTP: crowds of scripted users against a real aiogram dispatcher, call stats, flood limits."""

from __future__ import annotations

import aiohttp
from aiogram import Bot, Dispatcher, F
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from testkit.telegram import FakeTelegram
from tests.conftest import wait_until
from .conftest import TOKEN, make_bot, polling

BUTTON = "💰 Balance"


def menu_bot() -> Dispatcher:
    dp = Dispatcher()

    @dp.message()
    async def menu(message: Message, bot: Bot) -> None:
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=BUTTON, callback_data="b")]])
        await bot.send_message(message.chat.id, f"menu for {message.text}", reply_markup=markup)

    @dp.callback_query(F.data == "b")
    async def tapped(query: CallbackQuery, bot: Bot) -> None:
        await bot.answer_callback_query(query.id)
        await bot.send_message(query.from_user.id, "balance: 7")

    return dp


async def wait_run(http: aiohttp.ClientSession, run: int) -> dict:
    async def finished():
        async with http.get(f"/_fake/crowd/run/{run}") as r:
            status = await r.json()
        return status if status["finished_at"] is not None else None
    return await wait_until(finished)


async def test_a_crowd_runs_its_script_for_every_user(fake: FakeTelegram, bot: Bot) -> None:
    async with aiohttp.ClientSession(base_url=fake.base_url) as http, polling(menu_bot(), bot):
        async with http.post("/_fake/crowd/users", json={"first_id": 500, "count": 5}) as r:
            assert (await r.json()) == {"created": 5}
        steps = [{"command": "/start"}, {"tap": BUTTON}, {"see": "balance: 7"}]
        async with http.post("/_fake/crowd/run", json={"first_id": 500, "count": 5, "steps": steps}) as r:
            run = (await r.json())["run"]
        status = await wait_run(http, run)
    assert (status["done"], status["failed"], status["errors"]) == (5, 0, [])
    assert status["started_at"] <= status["finished_at"]
    for uid in range(500, 505):
        texts = [e.text for e in fake.users[uid].transcript]
        assert texts == ["/start", "menu for /start", "balance: 7"]
        assert [q.answer is not None for q in fake.callback_queries.values() if q.user_id == uid] == [True]


async def test_a_user_whose_step_never_comes_fails_with_the_reason(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession(base_url=fake.base_url) as http:
        await http.post("/_fake/crowd/users", json={"first_id": 600, "count": 3})
        body = {"user_ids": [600, 602], "steps": [{"tap": "Nope"}], "timeout": 0.05}  # not 601
        async with http.post("/_fake/crowd/run", json=body) as r:
            run = (await r.json())["run"]
        status = await wait_run(http, run)
    assert (status["users"], status["done"], status["failed"]) == (2, 0, 2)
    assert sorted(status["failed_users"]) == [600, 602]
    assert "no button 'Nope'" in status["errors"][0]


async def test_crowd_requests_are_checked(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession(base_url=fake.base_url) as http:
        refused = [("/_fake/crowd/users", {"first_id": 0, "count": 1}),
                   ("/_fake/crowd/run", {"first_id": 1, "count": 1, "steps": [{"command": "/x"}]}),  # no user 1
                   ("/_fake/crowd/run", {"first_id": 2, "count": 1, "steps": [{"dance": "x"}]}),
                   ("/_fake/crowd/run", {"first_id": 2, "count": 1, "steps": []})]
        await http.post("/_fake/crowd/users", json={"first_id": 2, "count": 1})
        for path, body in refused:
            async with http.post(path, json=body) as r:
                assert r.status == 400, (path, body)
        async with http.get("/_fake/crowd/run/99") as r:
            assert r.status == 404


async def test_stats_count_calls_their_429s_and_the_texts_asked_for(fake: FakeTelegram, bot: Bot) -> None:
    fake.user(700)
    start = fake.clock()
    await bot.send_message(700, "fine")
    await bot.send_message(700, "Something went wrong, sorry")
    fake.faults.flood_next(1, 1)
    async with aiohttp.ClientSession(base_url=fake.base_url) as http:
        async with http.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": 700, "text": "x"}) as r:
            assert r.status == 429
        await bot.send_chat_action(700, "typing")
        params = [("since", repr(start)), ("methods", "sendMessage"), ("contains", "went wrong"),
                  ("contains", "пошло не так")]
        async with http.get("/_fake/stats", params=params) as r:
            stats = await r.json()
        async with http.get("/_fake/stats", params={"since": repr(stats["now"] + 1)}) as r:
            later = await r.json()
    calls = stats["calls"]
    assert (calls["count"], calls["ok"], calls["rate_limited"]) == (3, 2, 1)
    assert stats["containing"] == 1 and stats["flood"] == 1
    assert start <= calls["first_at"] <= calls["ok_last_at"] <= calls["last_at"] <= stats["now"]
    assert later["calls"]["count"] == 0


async def test_flood_limits_lift_the_global_limit_and_keep_the_per_chat_one() -> None:
    now = [0.0]  # a stopped clock: no bucket refills while the test sends
    async with FakeTelegram(TOKEN, clock=lambda: now[0]) as fake:
        bot = make_bot(fake)
        try:
            async with aiohttp.ClientSession(base_url=fake.base_url) as http:
                async def send(chat: int) -> int:
                    async with http.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": chat, "text": "x"}) as r:
                        return r.status

                for uid in range(1, 41):
                    fake.user(uid)
                statuses = [await send(uid) for uid in range(1, 32)]
                assert statuses.count(429) == 1  # the 31st send in one instant: over 30/s
                async with http.post("/_fake/flood_limits", json={"global_rate": 1e6, "global_burst": 1e6}) as r:
                    assert (await r.json())["global_burst"] == 1e6
                assert [await send(uid) for uid in range(1, 41)] == [200] * 40
                assert [await send(40) for _ in range(3)] == [200, 200, 429]  # per chat: burst 3
                async with http.post("/_fake/flood_limits", json={"global_rate": 0}) as r:
                    assert r.status == 400
        finally:
            await bot.session.close()
