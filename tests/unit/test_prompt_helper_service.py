"""PromptHelper without the network: outcomes, the per-user window on an injected clock, the
charge/refund calls it makes, the native switches, and how an answer is cleaned."""

from __future__ import annotations

import asyncio

import pytest

from bot.services.prompt_helper import (
    Failed,
    Improved,
    Limited,
    PromptHelper,
    Short,
    clean,
    native_switch,
)
from kie_client.catalog import Catalog, Kind
from kie_client.chat import ChatCompletion
from kie_client.errors import KieServerError
from storage.errors import InsufficientBalanceError


class FakeChat:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    async def complete(self, model, messages, **kw):
        self.calls.append((model, messages))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if answer == "hang":
            await asyncio.Event().wait()
        return ChatCompletion(text=answer)


class FakeRepo:
    def __init__(self, balance=10):
        self.balance = balance
        self.keys: dict[str, int] = {}
        self.refunded: set[str] = set()

    async def assist_charge(self, user_id, amount, *, key):
        if key in self.keys:
            return False
        if self.balance < amount:
            raise InsufficientBalanceError(self.balance, amount)
        self.keys[key] = amount
        self.balance -= amount
        return True

    async def assist_refund(self, user_id, *, key):
        if key not in self.keys or key in self.refunded:
            return 0
        self.refunded.add(key)
        self.balance += self.keys[key]
        return self.keys[key]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def helper(chat, repo=None, **kw):
    kw.setdefault("clock", Clock())
    return PromptHelper(chat, repo or FakeRepo(), model="gemini-3-flash", **kw)


def ask(h, *, user=1, prompt="x", key="a", kind=Kind.IMAGE, limit=100):
    return h.improve(user_id=user, prompt=prompt, kind=kind, key=key, max_length=limit)


async def test_free_improve_asks_the_chat_with_the_kind_and_limit():
    chat = FakeChat('"a cat wearing a top hat"')
    outcome = await ask(helper(chat), prompt="кот", kind=Kind.VIDEO, limit=500)
    assert outcome == Improved("a cat wearing a top hat", 0)
    (model, messages), = chat.calls
    assert model == "gemini-3-flash" and messages[1] == {"role": "user", "content": "кот"}
    assert "video generator" in messages[0]["content"] and "500 characters" in messages[0]["content"]


async def test_priced_charges_once_per_key_and_refunds_once_on_failure():
    repo = FakeRepo(balance=10)
    h = helper(FakeChat("fine"), repo, price=2, per_minute=10)
    assert await ask(h, key="a") == Improved("fine", 2)
    assert await ask(h, key="a") == Improved("fine", 0)  # the same press: no second charge
    assert repo.balance == 8
    h.chat = FakeChat(KieServerError("boom"))
    assert await ask(h, key="b") == Failed(2)
    assert await ask(h, key="b") == Failed(0)  # refunded once
    assert repo.balance == 8


async def test_short_balance_asks_nothing():
    chat = FakeChat("x")
    outcome = await ask(helper(chat, FakeRepo(balance=1), price=2))
    assert outcome == Short(2, 1) and chat.calls == []


async def test_per_user_window_on_the_clock():
    clock = Clock()
    h = helper(FakeChat("ok"), per_minute=2, clock=clock)

    def run(user):
        return ask(h, user=user, key=str(clock.now))

    assert isinstance(await run(1), Improved)
    clock.now += 30
    assert isinstance(await run(1), Improved)
    assert await run(1) == Limited(2)
    assert isinstance(await run(2), Improved)  # someone else
    clock.now += 30.5  # the first press left the window
    assert isinstance(await run(1), Improved)


@pytest.mark.parametrize("answer", [KieServerError("x"), "   ", '""', "hang"])
async def test_failures_and_empty_answers_are_outcomes_not_exceptions(answer):
    h = helper(FakeChat(answer), timeout_s=0.05)
    assert await ask(h) == Failed(0)


def test_clean():
    assert clean('  "a  red\nfox"  ', 100) == "a red fox"
    assert clean("«лиса»", 100) == "лиса"
    assert clean("one two three four", 12) == "one two"
    assert clean("abcdefghij", 4) == "abcd"


def test_native_switch_is_found_on_veo_only():
    catalog = Catalog()
    assert native_switch(catalog.get("veo31_fast")).name == "enableTranslation"
    assert native_switch(catalog.get("seedream_45_t2i")) is None
    h = helper(FakeChat("x"))
    assert not h.offers_improve(catalog.get("veo31_lite"))
    assert h.offers_improve(catalog.get("nano_banana_2"))
