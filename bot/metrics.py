"""Prometheus metrics: one `Metrics` (and one CollectorRegistry) per App, nothing at import time.

Two kinds of numbers:
- this process's events, counted as they happen: KIE calls (latency, errors by endpoint and
  code; fed by KieClient's `on_response` hook, so kie_client knows nothing of Prometheus) and
  Telegram API errors and 429s (`TelegramMetrics`, a Bot session middleware: every call of the
  process, the ChatSender's included, goes through it). Sum them across processes;
- database-wide facts, read at scrape time (`Repository.metrics_view`, cached for `db_ttl_s` so
  a busy scraper cannot load the database): generations by model and outcome, queue depth per
  pipeline stage, credits sold/spent/refunded, payments, the Telegram update inbox. Every
  process reports the same values: aggregate them with max(), not sum().

Labels are bounded: model keys, statuses, stage and endpoint names, Telegram method names, KIE
codes from a fixed set. Never user ids, task ids, prompts or anything secret.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bot.logging import kv

if TYPE_CHECKING:
    from storage.repository import Repository

log = logging.getLogger("bot.metrics")

# Codes KIE documents (HTTP status or body `code`); anything else is reported as "other".
KIE_CODES = frozenset({200, 400, 401, 402, 403, 404, 405, 408, 413, 422, 429, 433, 455, 500,
                       501, 502, 503, 504, 505})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
# KIE answers in tens of milliseconds (reads) to tens of seconds (createTask, uploads).
KIE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Ledger reasons that only ever add up (counters); admin adjustments go both ways (a gauge).
_CREDIT_KINDS = {"purchase": "sold", "spend": "spent", "refund": "refunded",
                 "purchase_refund": "purchase_refunded", "signup_bonus": "bonus"}
DEFAULT_DB_TTL_S = 10.0


def kie_code(status: int | str, body_code: int | None) -> str:
    """The one code an attempt ended with: KIE's body code when it said one other than 200,
    else the HTTP status, else the transport error's name — from a bounded set."""
    if body_code is not None and body_code != 200:
        code: int | str = body_code
    else:
        code = status
    if isinstance(code, int):
        return str(code) if code in KIE_CODES else "other"
    return code if _NAME.match(code) else "other"


def _label(value: str) -> str:
    return value if _NAME.match(value) else "other"


class Metrics:
    """Every metric of one App. `collect_db()` refreshes the database-wide part (the /metrics
    handler awaits it before rendering); `render()` is the exposition text."""

    def __init__(self, *, repository: Repository | None = None, db_ttl_s: float = DEFAULT_DB_TTL_S,
                 process: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._repository = repository
        self._db_ttl_s = db_ttl_s
        self._clock = clock
        r = self.registry
        self.kie_seconds = Histogram(
            "kiebot_kie_request_seconds", "KIE API call duration (each attempt), by endpoint",
            ["endpoint"], buckets=KIE_BUCKETS, registry=r)
        self.kie_requests = Counter(
            "kiebot_kie_requests", "KIE API attempts by endpoint and the code they ended with",
            ["endpoint", "code"], registry=r)
        self.kie_errors = Counter(
            "kiebot_kie_errors", "KIE API attempts that failed (HTTP or body code other than "
            "200, or no answer), by endpoint and code", ["endpoint", "code"], registry=r)
        self.telegram_errors = Counter(
            "kiebot_telegram_errors", "Telegram Bot API calls that raised, by method and error",
            ["method", "error"], registry=r)
        self.telegram_flood_waits = Counter(
            "kiebot_telegram_flood_waits", "Telegram 429 (flood control) answers, by method",
            ["method"], registry=r)
        self.telegram_flood_seconds = Counter(
            "kiebot_telegram_flood_wait_seconds", "Seconds Telegram's 429 answers asked us to "
            "wait (retry_after), by method", ["method"], registry=r)
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self._db = _DatabaseCollector()
        r.register(self._db)
        self._db_at: float | None = None
        self._db_lock = asyncio.Lock()

    # -- hooks fed by the rest of the app ---------------------------------------------------

    def kie_response(self, endpoint: str, status: int | str, body_code: int | None,
                     seconds: float) -> None:
        """KieClient's `on_response` hook."""
        endpoint = _label(endpoint)
        code = kie_code(status, body_code)
        self.kie_seconds.labels(endpoint).observe(max(0.0, seconds))
        self.kie_requests.labels(endpoint, code).inc()
        if code != "200":
            self.kie_errors.labels(endpoint, code).inc()

    def telegram_error(self, method: str, exc: BaseException) -> None:
        method = _label(method)
        self.telegram_errors.labels(method, _label(type(exc).__name__)).inc()
        if isinstance(exc, TelegramRetryAfter):
            self.telegram_flood_waits.labels(method).inc()
            self.telegram_flood_seconds.labels(method).inc(max(0, exc.retry_after))

    # -- the database-wide part -------------------------------------------------------------

    async def collect_db(self) -> None:
        """Re-read the database-wide numbers unless the last read is younger than the TTL. A
        failed read keeps serving the process's own metrics with kiebot_database_up 0."""
        if self._repository is None:
            return
        async with self._db_lock:  # concurrent scrapes share one read
            now = self._clock()
            if self._db_at is not None and now - self._db_at < self._db_ttl_s:
                return
            started = time.perf_counter()
            try:
                view = await self._repository.metrics_view()
                inbox = await self._repository.inbox_unhandled()
            except Exception as exc:
                log.warning(kv("metrics: database read failed", error=type(exc).__name__))
                self._db.failed(time.perf_counter() - started)
            else:
                self._db.update(view, inbox, time.perf_counter() - started)
            self._db_at = now

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _DatabaseCollector:
    """Serves the last database read (prometheus-client collectors are synchronous)."""

    def __init__(self) -> None:
        self._families: list[Metric] = []

    def describe(self) -> list[Metric]:
        return []  # families depend on the data; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)

    def failed(self, seconds: float) -> None:
        self._families = [_gauge("kiebot_database_up", "Whether the last database read for "
                                 "/metrics succeeded", 0), _read_seconds(seconds)]

    def update(self, view: dict[str, Any], inbox: int, seconds: float) -> None:
        gens = CounterMetricFamily(
            "kiebot_generations", "Generations in the database by model and outcome: created "
            "(all), succeeded, failed, refunded (failed and charged back)",
            labels=["model", "status"])
        created: dict[str, int] = {}
        for (model, status), n in sorted(view["generations"].items()):
            created[model] = created.get(model, 0) + n
            if status in ("succeeded", "failed"):
                gens.add_metric([model, str(status)], n)
        for model, n in sorted(created.items()):
            gens.add_metric([model, "created"], n)
        for model, n in sorted(view["refunded"].items()):
            gens.add_metric([model, "refunded"], n)
        depth = GaugeMetricFamily(
            "kiebot_queue_depth", "Generations waiting for each pipeline stage (submit: queued; "
            "poll: at KIE; store: results to copy; deliver: finished, not yet sent; expire: "
            "past their deadline)", labels=["stage"])
        for stage, n in view["stages"].items():
            depth.add_metric([str(stage)], n)
        credits = CounterMetricFamily(
            "kiebot_credits", "Credits moved through the ledger: sold (Stars purchases), spent "
            "(generations), refunded (failed generations), purchase_refunded (payments given "
            "back), bonus (signup)", labels=["kind"])
        ledger = view["ledger"]
        for reason, kind in _CREDIT_KINDS.items():
            _, total = ledger.get(reason, (0, 0))
            credits.add_metric([kind], abs(total))
        self._families = [
            _gauge("kiebot_database_up", "Whether the last database read for /metrics "
                   "succeeded", 1),
            _read_seconds(seconds),
            gens, depth, credits,
            _gauge("kiebot_credits_admin_net", "Net credits admins added (negative: removed)",
                   ledger.get("admin_adjust", (0, 0))[1]),
            _gauge("kiebot_credits_balance", "Credits users hold right now (Σ balances)",
                   view["balances"]),
            _counter("kiebot_payments", "Telegram Stars payments credited", view["payments"]),
            _counter("kiebot_payment_stars", "Stars received in credited payments", view["stars"]),
            _counter("kiebot_payments_refunded", "Payments an admin refunded",
                     view["payments_refunded"]),
            _gauge("kiebot_inbox_unhandled", "Telegram updates stored and not yet handled",
                   inbox),
        ]


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _read_seconds(seconds: float) -> GaugeMetricFamily:
    return _gauge("kiebot_database_read_seconds", "How long the last database read for /metrics "
                  "took", seconds)


class TelegramMetrics(BaseRequestMiddleware):
    """Bot session middleware: counts every Telegram API error of this process by method (429s
    also on their own, with the seconds Telegram asked us to wait), then re-raises."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, make_request: NextRequestMiddlewareType[Any], bot: Bot,
                       method: TelegramMethod[Any]) -> Any:
        try:
            return await make_request(bot, method)
        except TelegramAPIError as exc:
            self._metrics.telegram_error(type(method).__name__, exc)
            raise


def metrics_handler(metrics: Metrics, *, token: str | None = None):
    """GET /metrics. With `token`, only `Authorization: Bearer <token>` is answered (401 else)."""
    expected = f"Bearer {token}".encode() if token else None

    async def handle(request: web.Request) -> web.Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.Response(status=401, text="metrics need the METRICS_TOKEN bearer\n",
                                    headers={"WWW-Authenticate": "Bearer"})
        await metrics.collect_db()
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle
