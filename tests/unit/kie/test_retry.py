"""RetryPolicy.backoff_delay and Retry-After parsing."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kie_client import RetryPolicy
from kie_client.retry import DEFAULT_RETRY_STATUSES, parse_retry_after


def test_exponential_capped_without_jitter():
    p = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.0)
    assert [p.backoff_delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 4.0), (0.5, 3.0), (1.0, 2.0)])
def test_jitter_shrinks_delay_by_at_most_the_fraction(draw, expected):
    p = RetryPolicy(base_delay=1.0, max_delay=60, jitter=0.5, rng=lambda: draw)
    assert p.backoff_delay(3) == expected


def test_retry_after_overrides_backoff():
    p = RetryPolicy(jitter=0.0)
    assert p.backoff_delay(1, retry_after=12.5) == 12.5
    assert p.backoff_delay(3, retry_after=-4) == 0.0


def test_defaults_retry_429_455_5xx_but_not_501_505():
    assert {429, 455, 500, 502, 503, 504} <= DEFAULT_RETRY_STATUSES
    assert 501 not in DEFAULT_RETRY_STATUSES and 505 not in DEFAULT_RETRY_STATUSES
    assert RetryPolicy().max_attempts >= 2
    assert RetryPolicy.none().max_attempts == 1


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_delay": -1}, {"jitter": 1.5}, {"max_retry_after": -1}]
)
def test_invalid_policy(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_retry_statuses_configurable():
    p = RetryPolicy(retry_statuses={429})
    assert p.retry_statuses == frozenset({429})


NOW = datetime(2026, 11, 24, 20, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Tue, 24 Nov 2026 20:00:30 GMT", 30.0),
        ("Tue, 24 Nov 2026 19:59:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=NOW) == expected
