"""ChatSender pacing on a fake clock: messages per chat and overall, edits and chat actions on a
budget of their own, cosmetic calls after urgent ones, bounded per-chat memory."""

from __future__ import annotations

import asyncio

from aiogram.methods import EditMessageText, SendChatAction, SendMessage, SendPhoto

from bot.delivery import ChatSender


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class RecordingBot:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, object]] = []

    async def __call__(self, method):
        self.calls.append((self.clock.now, method))
        return True


def sender_for(clock: FakeClock, **kw) -> tuple[ChatSender, RecordingBot]:
    bot = RecordingBot(clock)
    return ChatSender(bot, clock=clock, sleep=clock.sleep, **kw), bot


def edit(chat: int, text: str = "card") -> EditMessageText:
    return EditMessageText(chat_id=chat, message_id=1, text=text)


def max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for s in times if t <= s < t + window) for t in times)


async def test_a_delivery_edits_its_card_and_sends_at_once():
    """The status-card edit and the media in one chat: no 1 s wait between them (Telegram's
    per-chat limit is about messages), but two messages still are 1 s apart."""
    clock = FakeClock()
    sender, bot = sender_for(clock)
    await sender.send(5, edit(5))
    await sender.send(5, SendMessage(chat_id=5, text="result"))
    await sender.send(5, edit(5, "again"))
    await sender.send(5, SendChatAction(chat_id=5, action="typing"))
    assert [t for t, _ in bot.calls] == [0.0, 0.0, 0.0, 0.0]
    await sender.send(5, SendMessage(chat_id=5, text="second"))
    assert bot.calls[-1][0] == 1.0


async def test_messages_fill_the_global_budget_and_never_exceed_it():
    clock = FakeClock()
    sender, bot = sender_for(clock)
    await asyncio.gather(*(sender.send(c, SendMessage(chat_id=c, text="x")) for c in range(200)))
    times = sorted(t for t, _ in bot.calls)
    assert len(times) == 200
    # Telegram counts on arrival (here: at once; a late arrival is the test below).
    assert max_in_window(times, 1.0) <= 30
    assert 200 / (times[-1] + 1.0) >= 0.9 * 30  # ≥ 90 % of 30/s


class GatedBot(RecordingBot):
    """The first `held` requests reach Telegram only when the test lets them (a slow network, a
    busy loop); later ones arrive when sent. `arrivals` is when Telegram counted each."""

    def __init__(self, clock: FakeClock, held: int) -> None:
        super().__init__(clock)
        self.held = held
        self.gate = asyncio.Event()
        self.arrivals: list[float] = []

    async def __call__(self, method):
        self.calls.append((self.clock.now, method))
        if len(self.calls) <= self.held:
            await self.gate.wait()
        self.arrivals.append(self.clock.now)
        return True


async def test_a_slot_counts_from_its_answer_so_late_arrivals_cannot_bunch():
    """Three requests leave at 0 s but reach Telegram at 0.2 s: the next three must not go at
    1.0 s (Telegram would count six in [0.2, 1.2)), but once 1 s has passed since the answers."""
    clock = FakeClock()
    bot = GatedBot(clock, held=3)
    sender = ChatSender(bot, clock=clock, sleep=clock.sleep, global_per_second=3,
                        global_margin=0.0)
    sends = [asyncio.create_task(sender.send(c, SendMessage(chat_id=c, text="x")))
             for c in range(6)]
    for _ in range(100):
        if len(bot.calls) == 3:
            break
        await asyncio.sleep(0)
    for _ in range(20):  # while three are in flight, nothing else starts, however long
        await asyncio.sleep(0)
    assert len(bot.calls) == 3
    clock.now = 0.2
    bot.gate.set()
    await asyncio.gather(*sends)
    assert len(bot.arrivals) == 6
    assert max_in_window(bot.arrivals, 1.0) <= 3
    assert bot.arrivals[3:] == [1.2, 1.2, 1.2]


async def test_edits_do_not_take_the_messages_budget():
    clock = FakeClock()
    sender, bot = sender_for(clock)
    await asyncio.gather(*(sender.send(1000 + c, edit(1000 + c), cosmetic=True) for c in range(30)))
    edits_done = clock.now
    await asyncio.gather(*(sender.send(c, SendPhoto(chat_id=c, photo="x")) for c in range(30)))
    assert edits_done == 0.0 and clock.now == 0.0  # 30 edits and then 30 messages at once


async def test_cosmetic_edits_wait_while_urgent_calls_queue():
    """Progress-card edits (cosmetic) get only the slots no final-card edit is waiting for."""
    clock = FakeClock()
    sender, bot = sender_for(clock, global_per_second=2, global_margin=0.0)

    async def cosmetic(n):
        await sender.send(100 + n, edit(100 + n, f"progress {n}"), cosmetic=True)

    async def urgent(n):
        await sender.send(200 + n, edit(200 + n, f"final {n}"))

    await asyncio.gather(*(urgent(n) for n in range(4)), *(cosmetic(n) for n in range(4)))
    texts = [m.text for _, m in bot.calls]
    # At most the one cosmetic call already queued ahead of them goes before the last urgent one.
    last_urgent = max(i for i, t in enumerate(texts) if t.startswith("final"))
    assert sum(1 for t in texts[:last_urgent] if t.startswith("progress")) <= 1
    assert len(texts) == 8


async def test_per_chat_memory_is_bounded():
    clock = FakeClock()
    sender, _ = sender_for(clock)
    for c in range(5000):
        await sender.send(c, edit(c), cosmetic=True)
    assert len(sender) == 0  # edits leave nothing behind
    for c in range(3000):
        await sender.send(c, SendMessage(chat_id=c, text="x"))
    assert len(sender) <= 1100  # recent chats are kept only for their pacing interval
    clock.now += 5.0
    await sender.send(99_999, SendMessage(chat_id=99_999, text="x"))
    await sender.send(99_998, SendMessage(chat_id=99_998, text="x"))
    assert len(sender) <= 1100
