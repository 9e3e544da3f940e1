"""The client's limiters against the emulator, which counts requests on *arrival* in sliding
windows like KIE: a burst of concurrent callers earns no 429 (no retries allowed, so a single
429 fails the test)."""

from __future__ import annotations

import asyncio

from kie_client import KieClient, RetryPolicy, SlidingWindowLimiter
from testkit.kie import KieEmulator, StateDelays

KEY = "pacing-key"
SEEDREAM = ("seedream/4.5-text-to-image",
            {"prompt": "a red fox in snow", "aspect_ratio": "16:9", "quality": "basic"})


async def test_bursts_stay_inside_kies_arrival_windows():
    # The emulator's create window is shortened (5 per 1 s) so the test runs in seconds; the
    # client keeps the same limit with its default margin, as build_kie_limiters does.
    emu = KieEmulator(KEY, delays=StateDelays(30, 30, 30), credits=10_000,
                      create_limit=(5, 1.0), record_limit=(10, 1.0))
    await emu.start()
    client = KieClient(KEY, market_base_url=emu.market_url, upload_base_url=emu.upload_url,
                       retry=RetryPolicy.none(),
                       create_limiter=SlidingWindowLimiter(5, 1.0),
                       status_limiter=SlidingWindowLimiter(10, 1.0))
    try:
        created = await asyncio.gather(*(client.create_task(*SEEDREAM) for _ in range(16)))
        records = await asyncio.gather(*(client.get_task(created[i % 16].task_id)
                                         for i in range(35)))
    finally:
        await client.aclose()
        await emu.stop()
    assert len({c.task_id for c in created}) == 16 and len(records) == 35
    assert [r.status for r in emu.requests if r.status == 429] == []
