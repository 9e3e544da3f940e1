"""Retry policy as data.

Which statuses are retried (default: 429, 455, 500, 502, 503, 504 — HTTP or body `code`):
- 429 rate limited and 455 maintenance are explicit "not now" answers; waiting helps.
- 500 and proxy 502–504 are transient server faults. A 500 whose message says
  "<field> is required" is a validation error and is never retried (errors.error_for).
- 501 (generation failed) and 505 (feature disabled) are final answers: not retried.
Connection errors and timeouts are retried for idempotent calls. createTask follows a stricter
rule in the client (retry only what certainly created nothing).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "DEFAULT_RETRY_STATUSES", "parse_retry_after"]

DEFAULT_RETRY_STATUSES = frozenset({429, 455, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to repeat a failed call.

    `max_attempts` counts the first try. `jitter` is the fraction of the exponential delay that
    is randomised away (0 = none, 1 = "full jitter"). A Retry-After longer than
    `max_retry_after` is not waited for inside a call: the error is raised so the caller can
    reschedule instead of holding a worker.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    max_retry_after: float = 60.0
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("RetryPolicy delays must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("RetryPolicy.jitter must be between 0 and 1")
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        A server-given Retry-After wins over the computed backoff (it is what KIE asked for).
        """
        if retry_after is not None:
            return max(0.0, float(retry_after))
        exp = self.base_delay * (2 ** max(0, attempt - 1))
        capped = min(self.max_delay, exp)
        return capped * (1.0 - self.jitter * self.rng())


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date. Garbage → None (ignored)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())
