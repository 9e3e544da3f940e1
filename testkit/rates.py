"""Rate figures over event times, shared by the fakes' stats routes (the benchmark reads them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def max_in_window(times: Iterable[float], width: float = 1.0) -> int:
    """The most events inside any window of `width` seconds (a sliding window, not whole
    seconds: 10 events late in one second and 10 early in the next count as 20)."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - width:
            start += 1
        best = max(best, end - start + 1)
    return best


def summary(times: list[float], statuses: list[Any], ok: Any = 200) -> dict[str, Any]:
    """count, ok, rate_limited (429), first/last time of all and of the ok ones, max per 1 s."""
    ok_times = [t for t, s in zip(times, statuses) if s == ok]
    return {
        "count": len(times),
        "ok": len(ok_times),
        "rate_limited": sum(1 for s in statuses if s == 429),
        "first_at": min(times) if times else None,
        "last_at": max(times) if times else None,
        "ok_first_at": min(ok_times) if ok_times else None,
        "ok_last_at": max(ok_times) if ok_times else None,
        "max_per_second": max_in_window(times),
        "ok_max_per_second": max_in_window(ok_times),
    }
