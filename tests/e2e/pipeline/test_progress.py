"""Progress: a long generation's status card is edited at most once per 5 s, with chat actions."""

from __future__ import annotations

import time

import pytest

from tests.e2e.pipeline.helpers import make_user, media_messages, plain_stack, start, wait_final

pytestmark = pytest.mark.slow

EDIT_SPACING_S = 5.0
TOLERANCE_S = 0.3  # scheduler jitter on a busy machine; a real bug edits every ~1 s


class _TimedCalls(list):
    """FakeTelegram.calls with the monotonic time each call was recorded (Call has none)."""

    def __init__(self, existing):
        super().__init__(existing)
        self.times = [0.0] * len(existing)

    def append(self, item):
        self.times.append(time.monotonic())
        super().append(item)


async def test_status_card_edits_are_spaced_and_chat_actions_sent(tmp_path):
    from testkit.kie.faults import StateDelays

    delays = StateDelays(waiting=1.0, queuing=None, generating=11.0)
    async with plain_stack(tmp_path, emulator_options={"delays": delays}) as stack:
        tg = await make_user(stack)
        calls = _TimedCalls(stack.telegram.calls)
        stack.telegram.calls = calls
        started = await start(stack, card=True)
        card_id = started.generation.progress_message_id
        assert card_id
        began = time.monotonic()
        g = await wait_final(stack, started.generation.id, timeout=40)
        ran_s = time.monotonic() - began
        assert g.status == "succeeded" and len(media_messages(tg)) == 1
        assert ran_s >= 10.0, ran_s  # long enough for the 5 s rule to matter

        edits = [(t, c) for t, c in zip(calls.times, calls)
                 if c.method == "editMessageText" and c.status == 200
                 and int(c.params.get("message_id", 0)) == card_id]
        delivered_at = next(t for t, c in zip(calls.times, calls) if c.method == "sendPhoto")
        # The deliverer edits the card to its final state just before sending the result; that
        # edit is not progress and may follow the last progress edit closely.
        assert edits and edits[-1][0] <= delivered_at, "the card was not finalised before delivery"
        progress = [t for t, _ in edits[:-1]]
        assert len(progress) >= 2, [c for _, c in edits]  # ~12 s run: at least two progress edits
        gaps = [b - a for a, b in zip(progress, progress[1:])]
        assert all(gap >= EDIT_SPACING_S - TOLERANCE_S for gap in gaps), gaps

        actions = [c for c in calls if c.method == "sendChatAction"
                   and c.params.get("action") == "upload_photo"]
        assert actions, "no chat action was sent while generating"
