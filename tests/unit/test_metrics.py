"""bot/metrics.py without a database or a socket: per-App registries, bounded labels, the
Telegram middleware, the database part's cache and failure, the token on /metrics."""

from __future__ import annotations

import prometheus_client
import pytest
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import EditMessageText, SendMessage
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics, TelegramMetrics, kie_code, metrics_handler
from bot.server import build_web_app
from storage.models import GenerationStatus, Stage


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_app_has_its_own_registry_and_nothing_registers_globally():
    a, b = Metrics(process=False), Metrics(process=False)  # same names twice: no clash
    a.kie_response("createTask", 200, 200, 0.2)
    assert value(a, "kiebot_kie_requests_total", endpoint="createTask", code="200") == 1
    assert value(b, "kiebot_kie_requests_total", endpoint="createTask", code="200") is None
    assert b"kiebot_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


def test_kie_attempts_feed_latency_requests_and_errors_with_bounded_codes():
    m = Metrics(process=False)
    m.kie_response("recordInfo", 200, 200, 0.03)
    m.kie_response("recordInfo", 200, 422, 0.04)      # body code wins over HTTP 200
    m.kie_response("recordInfo", 503, None, 1.5)
    m.kie_response("recordInfo", "ReadTimeout", None, 30.0)
    m.kie_response("recordInfo", 200, 987654, 0.1)     # an undocumented code
    m.kie_response("../etc/passwd?token=x", 200, 200, 0.1)  # never a free-form label
    assert value(m, "kiebot_kie_request_seconds_count", endpoint="recordInfo") == 5
    assert value(m, "kiebot_kie_request_seconds_bucket", endpoint="recordInfo", le="0.05") == 2
    for code in ("422", "503", "ReadTimeout", "other"):
        assert value(m, "kiebot_kie_errors_total", endpoint="recordInfo", code=code) == 1
    assert value(m, "kiebot_kie_errors_total", endpoint="recordInfo", code="200") is None
    assert value(m, "kiebot_kie_requests_total", endpoint="other", code="200") == 1
    assert "passwd" not in m.render().decode()
    assert kie_code("x" * 80, None) == "other"


async def test_telegram_errors_and_429s_are_counted_by_method_and_reraised():
    m = Metrics(process=False)
    middleware = TelegramMetrics(m)
    send = SendMessage(chat_id=1, text="hi")
    failures = [TelegramRetryAfter(send, "Too Many Requests: retry after 7", 7),
                TelegramRetryAfter(send, "Too Many Requests: retry after 2", 2),
                TelegramForbiddenError(send, "Forbidden: bot was blocked by the user")]

    async def make_request(bot, method):
        if failures:
            raise failures.pop(0)
        return True

    for expected in (TelegramRetryAfter, TelegramRetryAfter, TelegramForbiddenError):
        with pytest.raises(expected):
            await middleware(make_request, None, send)
    assert await middleware(make_request, None, EditMessageText(text="x")) is True
    assert value(m, "kiebot_telegram_flood_waits_total", method="SendMessage") == 2
    assert value(m, "kiebot_telegram_flood_wait_seconds_total", method="SendMessage") == 9
    assert value(m, "kiebot_telegram_errors_total", method="SendMessage",
                 error="TelegramForbiddenError") == 1
    assert value(m, "kiebot_telegram_flood_waits_total", method="EditMessageText") is None


class FakeRepository:
    def __init__(self) -> None:
        self.reads = 0
        self.fail = False

    async def metrics_view(self) -> dict:
        self.reads += 1
        if self.fail:
            raise ConnectionError("database down")
        return {
            "generations": {("kling_26_t2v", GenerationStatus.succeeded): 4,
                            ("kling_26_t2v", GenerationStatus.failed): 2,
                            ("kling_26_t2v", GenerationStatus.queued): 1},
            "refunded": {"kling_26_t2v": 2},
            "stages": {Stage.submit: 1, Stage.poll: 0, Stage.store: 0, Stage.deliver: 3,
                       Stage.expire: 0},
            "ledger": {"purchase": (2, 215), "spend": (7, -350), "refund": (2, 100),
                       "admin_adjust": (1, -5)},
            "payments": 2, "stars": 200, "payments_refunded": 0, "balances": 1234,
        }

    async def inbox_unhandled(self) -> int:
        return 5


async def test_database_part_is_cached_for_its_ttl_and_survives_a_failed_read():
    clock = [100.0]
    repo = FakeRepository()
    m = Metrics(repository=repo, db_ttl_s=10.0, clock=lambda: clock[0], process=False)
    await m.collect_db()
    await m.collect_db()  # within the TTL: no second read
    assert repo.reads == 1
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for fam in text_string_to_metric_families(m.render().decode()) for s in fam.samples}
    gen = "kiebot_generations_total"
    assert got[(gen, (("model", "kling_26_t2v"), ("status", "created")))] == 7
    assert got[(gen, (("model", "kling_26_t2v"), ("status", "succeeded")))] == 4
    assert got[(gen, (("model", "kling_26_t2v"), ("status", "refunded")))] == 2
    assert (gen, (("model", "kling_26_t2v"), ("status", "queued"))) not in got  # not a counter
    assert got[("kiebot_queue_depth", (("stage", "deliver"),))] == 3
    assert got[("kiebot_credits_total", (("kind", "spent"),))] == 350
    assert got[("kiebot_credits_total", (("kind", "sold"),))] == 215
    assert got[("kiebot_credits_total", (("kind", "bonus"),))] == 0
    assert got[("kiebot_credits_admin_net", ())] == -5
    assert got[("kiebot_payment_stars_total", ())] == 200
    assert got[("kiebot_inbox_unhandled", ())] == 5
    assert got[("kiebot_database_up", ())] == 1

    clock[0] += 10.0
    repo.fail = True
    m.kie_response("credit", 200, 200, 0.1)
    await m.collect_db()
    assert repo.reads == 2
    assert value(m, "kiebot_database_up") == 0
    assert value(m, "kiebot_queue_depth", stage="deliver") is None  # no stale numbers
    assert value(m, "kiebot_kie_requests_total", endpoint="credit", code="200") == 1


async def test_metrics_route_answers_prometheus_text_and_honours_the_token():
    m = Metrics(process=True)
    open_handler = metrics_handler(m)
    response = await open_handler(make_mocked_request("GET", "/metrics"))
    assert response.status == 200 and response.content_type == "text/plain"
    assert b"process_resident_memory_bytes" in response.body  # the process collectors

    guarded = metrics_handler(m, token="metrics-token-0123456789")
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "metrics-token-0123456789"}):
        denied = await guarded(make_mocked_request("GET", "/metrics", headers=header))
        assert denied.status == 401 and b"kiebot_" not in denied.body
    allowed = await guarded(make_mocked_request(
        "GET", "/metrics", headers={"Authorization": "Bearer metrics-token-0123456789"}))
    assert allowed.status == 200 and b"kiebot_kie_request_seconds" in allowed.body


def test_every_role_serves_metrics_when_enabled():
    handler = metrics_handler(Metrics(process=False))
    for health_only in (False, True):  # a worker's server too: it makes the KIE calls
        app = build_web_app(generations=None, repository=None, callback_secret="s" * 16,
                            hmac_key=None, media=None, health_only=health_only, metrics=handler)
        paths = {r.resource.canonical for r in app.router.routes()}
        assert "/metrics" in paths and "/healthz" in paths
    app = build_web_app(generations=None, repository=None, callback_secret="s" * 16,
                        hmac_key=None, media=None)
    assert "/metrics" not in {r.resource.canonical for r in app.router.routes()}
