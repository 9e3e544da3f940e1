"""A real `kiebot run` freezes its start-up heap before it says it is ready (kiebot/serve.py
freeze_startup_heap: full collections then skip the long-lived objects instead of holding the
loop for a seventh of a second), and then answers as before."""

from __future__ import annotations

import re

from testkit.stack import LocalStack
from testkit.scripted import see

FROZEN = re.compile(r"startup heap frozen objects=(\d+)")


async def test_kiebot_run_freezes_its_startup_heap_before_ready_and_still_answers(tmp_path):
    async with LocalStack(tmp_path, in_process=False) as stack:
        await stack.start_process()
        log = stack.log_path.read_text()
        frozen = FROZEN.search(log)
        assert frozen is not None, log[-2000:]
        assert int(frozen.group(1)) > 10_000  # the catalog, aiogram's and pydantic's models…
        assert frozen.start() < log.index("kiebot ready")
        ann = stack.telegram.user(4242, first_name="Ann", language_code="en")
        await ann.send_command("/start")
        await see(ann, "Pick a section")
