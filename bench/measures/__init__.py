"""One module per measure of issue 11's table; each has `NAME` and `async run(ctx) -> [Figure]`."""

from __future__ import annotations

from . import callbacks, create, delivery, memory, polling, updates

MEASURES = {m.NAME: m for m in (updates, create, delivery, callbacks, memory, polling)}
