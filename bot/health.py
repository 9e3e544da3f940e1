"""Readiness: can this process do its work right now? (`/readyz`; `/healthz` is liveness only.)

Each part is a `Check`: an async probe that raises when the part is not usable. `Readiness`
runs them concurrently, each under its own timeout, and keeps each result for the check's `ttl_s`
— failures too — with one probe in flight per check however many requests ask at once. So a
probe storm (a load balancer, a misconfigured monitor) costs one database round trip a second
and one KIE call per `ttl_s`, never a request per probe against KIE's rate limits.

Results name the failing part and the exception's type only (`failing: ConnectionRefusedError`),
never its message: messages carry URLs, hosts and sometimes credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.logging import kv

log = logging.getLogger("bot.health")

OK = "ok"


@dataclass(frozen=True)
class Check:
    name: str
    # Raises when the part is not usable; may return details to show (numbers only, no secrets).
    probe: Callable[[], Awaitable[dict[str, Any] | None]]
    ttl_s: float = 1.0
    timeout_s: float = 3.0


@dataclass
class _Result:
    status: str
    details: dict[str, Any] | None
    expires: float


@dataclass
class Readiness:
    checks: list[Check]
    monotonic: Callable[[], float] = time.monotonic
    _cache: dict[str, _Result] = field(default_factory=dict)
    _inflight: dict[str, asyncio.Future] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [check.name for check in self.checks]

    async def run(self) -> tuple[bool, dict[str, str], dict[str, Any]]:
        """(every part ok, {part: "ok" | "failing: <Type>"}, details the probes returned)."""
        results = await asyncio.gather(*(self._result(check) for check in self.checks))
        statuses = {check.name: r.status for check, r in zip(self.checks, results, strict=True)}
        details: dict[str, Any] = {}
        for r in results:
            details.update(r.details or {})
        return all(s == OK for s in statuses.values()), statuses, details

    async def _result(self, check: Check) -> _Result:
        cached = self._cache.get(check.name)
        if cached is not None and cached.expires > self.monotonic():
            return cached
        future = self._inflight.get(check.name)
        if future is None:
            future = asyncio.ensure_future(self._probe(check))
            self._inflight[check.name] = future
            future.add_done_callback(lambda _f, name=check.name: self._inflight.pop(name, None))
        # Shielded: a client hanging up must not cancel the probe others are waiting on.
        return await asyncio.shield(future)

    async def _probe(self, check: Check) -> _Result:
        try:
            details = await asyncio.wait_for(check.probe(), timeout=check.timeout_s)
            status = OK
        except TimeoutError:
            details, status = None, "failing: timeout"
        except Exception as exc:
            details, status = None, f"failing: {type(exc).__name__}"
        if status != OK:
            previous = self._cache.get(check.name)
            if previous is None or previous.status != status:
                log.warning(kv("readiness check failing", part=check.name, status=status))
        result = _Result(status, details, self.monotonic() + check.ttl_s)
        self._cache[check.name] = result
        return result
