"""Composition root: every long-lived object is built here, from Settings, and nowhere else.

`build_app(settings)` does no I/O; `await app.start()` migrates (if needed), opens the server,
starts the jobs and then Telegram (webhook or long polling); `await app.stop()` undoes it in
reverse, letting in-flight work finish or handing it back (leases released).

The process role (PROCESS_ROLE / `kiebot run --role`) decides what starts: `all` everything;
`web` Telegram intake (webhook or polling), the update inbox's drainer, KIE callbacks, /media;
`worker` the pipeline jobs and /healthz only — it never touches the webhook nor polls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.types import User as TgUser
from aiohttp import web
from kie_client.catalog import Catalog, load_catalog
from kie_client.chat import ChatClient
from kie_client.client import KieClient
from kie_client.ratelimit import SlidingWindowLimiter
from sqlalchemy.ext.asyncio import AsyncEngine
from storage.db import create_engine
from storage.media import LocalMediaStore, MediaStore
from storage.models import User
from storage.repository import Repository
from storage.repository import ReferralTerms, SignupRules

from bot.config import Settings, SettingsError, mask_url_password
from bot.delivery import ChatSender
from bot.downloads import SafeDownloader
from bot.health import Check, Readiness
from bot.inbox import (
    InboxDrainer,
    InboxPoller,
    InboxWriter,
    StaleCallbackAnswers,
    webhook_handler,
)
from bot.jobs import JobRunner
from bot.logging import RedactionHandle, install_redaction, kv
from bot.loop_share import LoopShare
from bot.metrics import Metrics, TelegramMetrics, metrics_handler
from bot.server import WEBHOOK_PATH, build_web_app, database_probe, webhook_secret

if TYPE_CHECKING:
    from handlers.albums import AlbumCollector
from bot.presenter import Presenter
from bot.telegram_session import KiebotSession
from bot.services.accounts import AccountService, PaymentResult
from bot.services.followups import FollowupService
from bot.services.broadcast import BroadcastRunner, BroadcastService
from bot.services.generation import GenerationService
from bot.services.models import ModelAdmin
from bot.services.prompt_helper import PromptHelper
from bot.services.templates import TemplateService
from bot.templates import DATA_FILE as TEMPLATES_DATA_FILE
from bot.templates import load_templates
from bot.services.pipeline.context import Pipeline, PipelineConfig
from bot.services.pipeline.submit import SlotNotingLimiter
from bot.services.reconcile import PaymentReconciler
from bot.services.referrals import ReferralService

log = logging.getLogger("kiebot.app")

# Readiness (bot/health.py): how long each part's answer is kept, so a probe storm costs one
# database round trip a second and one KIE call (GET credit, not recordInfo's 10/s) per 15 s.
READY_DATABASE_TTL_S = 1.0
READY_REDIS_TTL_S = 1.0
READY_MEDIA_TTL_S = 5.0
READY_KIE_TTL_S = 15.0
# Start: Redis is asked this many times (1 s, then 2 s apart) before the start is refused.
REDIS_START_ATTEMPTS = 3
REDIS_START_TIMEOUT_S = 3.0


class DependencyUnavailableError(SettingsError):
    """A service a setting points at cannot be used at start (e.g. REDIS_URL): one line naming
    the setting, no secret in it. A SettingsError, so `kiebot run` prints it and exits 2."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__([f"{setting}: {message}"])
        self.setting = setting


# Stars payments the handler could not credit are found in getStarTransactions on start and
# then this often (bot/services/reconcile.py).
RECONCILE_INTERVAL_S = 300.0


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        callback_secret=settings.kie_callback_secret.get_secret_value(),
        public_base_url=settings.public_base_url,
        max_in_flight=settings.max_in_flight,
        image_expiry=timedelta(minutes=settings.image_expiry_minutes),
        video_expiry=timedelta(minutes=settings.video_expiry_minutes),
        submit_unknown_window=timedelta(minutes=settings.submit_unknown_refund_minutes),
        callback_grace_s=settings.callback_grace_seconds,
        poll_initial_s=settings.poll_initial_seconds,
        lease_seconds=settings.lease_seconds,
        max_result_bytes=settings.max_result_bytes,
        submit_concurrency=settings.submit_concurrency,
        poll_batch=settings.poll_batch, poll_concurrency=settings.poll_concurrency,
        store_batch=settings.store_batch, store_concurrency=settings.store_concurrency,
        deliver_batch=settings.deliver_batch, deliver_concurrency=settings.deliver_concurrency,
        admin_ids=tuple(settings.admin_ids),
    )


def secrets_of(settings: Settings) -> list[str]:
    """Every value the redaction layer must mask (derived ones included)."""
    values = [
        _secret(settings.bot_token), _secret(settings.kie_api_key),
        _secret(settings.kie_callback_secret), _secret(settings.kie_webhook_hmac_key),
        _secret(settings.supabase_service_role_key), _secret(settings.metrics_token),
    ]
    token, secret = values[0], values[2]
    if token and secret:
        values.append(webhook_secret(token, secret))
    if token:
        values.append(token.partition(":")[2])
    values.extend(settings.url_passwords())
    if settings.sentry_dsn is not None:
        from bot.sentry import dsn_secrets

        values.extend(dsn_secrets(settings.sentry_dsn.get_secret_value()))
    return [v for v in values if v]


def media_base_url(settings: Settings) -> str:
    if settings.public_base_url:
        return settings.public_base_url
    return f"http://{settings.server_host}:{settings.server_port}"


def build_media_store(settings: Settings):
    if settings.media_store == "supabase":
        from storage.supabase_store import SupabaseMediaStore

        return SupabaseMediaStore(settings.supabase_url,
                                  settings.supabase_service_role_key.get_secret_value(),
                                  settings.supabase_bucket)
    return LocalMediaStore(settings.media_dir, media_base_url(settings))


def build_fsm_storage(settings: Settings) -> BaseStorage:
    if settings.redis_url:
        # aiogram's RedisStorage whose isolation reads a chat's FSM with its lock and writes it
        # back with the release: two round trips per update (bot/fsm_redis.py).
        from bot.fsm_redis import KiebotRedisStorage

        return KiebotRedisStorage.from_url(settings.redis_url)
    return MemoryStorage()


def build_redis(settings: Settings, cleanup: list):
    """The Redis client for KIE's shared limits, the start check and readiness (None without
    REDIS_URL). The FSM storage keeps its own client (aiogram's RedisStorage)."""
    if not settings.redis_url:
        return None
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    cleanup.append(redis.aclose)
    return redis


def build_kie_limiters(settings: Settings, cleanup: list, redis=None):
    """KIE limits are per account: shared through Redis when several processes may run."""
    if not settings.redis_url:
        return (SlidingWindowLimiter(settings.kie_create_per_10s, 10.0),
                SlidingWindowLimiter(settings.kie_status_per_second, 1.0))
    from bot.shared_limits import RedisWindowLimiter, limiter_key

    if redis is None:
        redis = build_redis(settings, cleanup)
    api_key = settings.kie_api_key.get_secret_value()
    return (
        RedisWindowLimiter(redis, limiter_key(api_key, "create"), settings.kie_create_per_10s, 10.0),
        RedisWindowLimiter(redis, limiter_key(api_key, "status"), settings.kie_status_per_second, 1.0),
    )


def build_readiness(*, repository: Repository, media: MediaStore, kie: KieClient,
                    redis=None) -> Readiness:
    """What /readyz checks: the database (with the queue figures), Redis when configured, the
    media store (a write at the local folder; Supabase's bucket answering) and KIE (GET credit:
    reachable and the key accepted)."""
    checks = [Check("database", database_probe(repository), ttl_s=READY_DATABASE_TTL_S)]
    if redis is not None:
        async def redis_probe() -> None:
            await redis.ping()

        checks.append(Check("redis", redis_probe, ttl_s=READY_REDIS_TTL_S, timeout_s=2.0))
    media_probe = getattr(media, "probe", None)
    if media_probe is not None:
        checks.append(Check("media", media_probe, ttl_s=READY_MEDIA_TTL_S, timeout_s=5.0))

    async def kie_probe() -> None:
        await kie.get_credits()

    checks.append(Check("kie", kie_probe, ttl_s=READY_KIE_TTL_S, timeout_s=5.0))
    return Readiness(checks)


async def check_redis(redis, url: str, *, attempts: int = REDIS_START_ATTEMPTS,
                      timeout_s: float = REDIS_START_TIMEOUT_S, sleep=asyncio.sleep) -> None:
    """Refuse to start on a Redis that cannot be used: the FSM, its per-chat lock and KIE's
    shared limits live there, so every user action would fail. A few tries first (Redis may
    be starting next to us)."""
    from redis.exceptions import AuthenticationError, RedisError

    reason = "no answer"
    for attempt in range(1, attempts + 1):
        try:
            await asyncio.wait_for(redis.ping(), timeout=timeout_s)
            return
        except AuthenticationError:
            raise DependencyUnavailableError(
                "REDIS_URL", f"Redis at {mask_url_password(url)} refused the credentials"
            ) from None
        except TimeoutError:
            reason = f"no answer within {timeout_s:g} s"
        except (RedisError, OSError) as exc:
            reason = type(exc).__name__
        log.debug(kv("redis not reachable yet", attempt=f"{attempt}/{attempts}",
                       reason=reason))
        if attempt < attempts:
            await sleep(float(attempt))
    raise DependencyUnavailableError(
        "REDIS_URL", f"Redis at {mask_url_password(url)} is unreachable ({reason}); start it or "
                     "fix REDIS_URL (unset it to run one process without Redis)")


def _owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    repository: Repository
    media: MediaStore
    kie: KieClient
    catalog: Catalog
    bot: Bot
    dispatcher: Dispatcher
    sender: ChatSender
    downloader: SafeDownloader
    presenter: Presenter
    generations: GenerationService
    accounts: AccountService
    jobs: JobRunner
    web_app: web.Application
    telegram_secret: str
    inbox_writer: InboxWriter | None = None
    drainer: InboxDrainer | None = None
    role: str = "all"
    _runner: web.AppRunner | None = None
    _poller: InboxPoller | None = None
    _redaction: RedactionHandle | None = None
    _started: bool = False
    # getUpdates long-poll seconds; LocalStack shortens it so the fake server stops promptly.
    polling_timeout: int = 10
    _extra_cleanup: list = field(default_factory=list)
    reconciler: PaymentReconciler | None = None
    metrics: Metrics | None = None
    redis: Any = None  # REDIS_URL's client (build_redis), None without Redis
    broadcaster: BroadcastRunner | None = None  # the worker's broadcast job (jobs run it)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.server_host}:{self.settings.server_port}"

    async def start(self, *, migrate: bool = True) -> None:
        s = self.settings
        self._redaction = install_redaction(secrets_of(s))
        if self.redis is not None:
            await check_redis(self.redis, s.redis_url or "")
        if migrate:
            from migrations.runner import ensure_schema

            await ensure_schema(self.engine)
        ensure_bucket = getattr(self.media, "ensure_bucket", None)
        if ensure_bucket is not None:  # Supabase: create the public `generations` bucket once
            await ensure_bucket()
        self._runner = web.AppRunner(self.web_app, handle_signals=False, access_log=None)
        await self._runner.setup()
        # backlog: KIE opens a connection per callback; 200 results finishing together
        # overflowed the default 128 and the rest waited for a SYN retry (~1 s).
        site = web.TCPSite(self._runner, s.server_host, s.server_port, reuse_address=True,
                           backlog=1024)
        await site.start()
        log.info(kv("server listening", host=s.server_host, port=s.server_port,
                    mode="webhook" if s.webhook_mode else "polling", role=self.role))
        self._started = True
        if self.role in ("all", "worker"):
            self.jobs.start()
        if self.role == "worker":
            return  # never the webhook, never getUpdates: those belong to the web processes
        await self.dispatcher.emit_startup(bot=self.bot, **self.dispatcher.workflow_data)
        assert self.drainer is not None and self.inbox_writer is not None
        self.drainer.start()  # first: updates stored by a previous process are handled now
        allowed = self.dispatcher.resolve_used_update_types()
        if s.webhook_mode:
            await self.bot.set_webhook(
                f"{s.public_base_url}{WEBHOOK_PATH}", secret_token=self.telegram_secret,
                allowed_updates=allowed,
            )
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._poller = InboxPoller(self.bot, self.inbox_writer, allowed_updates=allowed,
                                       timeout=self.polling_timeout)
            self._poller.start()

    async def stop(self) -> None:
        """Stop taking work (Telegram updates, jobs), finish or hand back the rest, close."""
        s = self.settings
        if self._poller is not None:
            await self._poller.stop()  # an unstored batch is not confirmed: Telegram resends it
            self._poller = None
        # Webhook requests still arriving are stored as usual and wait for the next process.
        if self._started and self.role != "worker" and self.drainer is not None:
            await self.drainer.stop(grace_s=s.kie_timeout_seconds + 5)
            await self.dispatcher.emit_shutdown(bot=self.bot, **self.dispatcher.workflow_data)
        if self.broadcaster is not None:
            self.broadcaster.stop()  # ends its pass after the batch under way
        # Long enough for an in-flight createTask to get its answer: cancelling it would leave
        # the outcome unknown (submit_unknown) for the next process.
        await self.jobs.stop(grace_s=s.kie_timeout_seconds + 5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        media_close = getattr(self.media, "aclose", None)
        closers = [self.dispatcher["albums"].close, self.bot.session.close, self.kie.aclose,
                   self.downloader.aclose, self.dispatcher.storage.close, *self._extra_cleanup]
        if media_close is not None:
            closers.append(media_close)
        for closer in closers:
            try:
                await closer()
            except Exception as exc:
                log.warning(kv("close failed", what=getattr(closer, "__qualname__", "?"),
                               error=type(exc).__name__))
        await self.engine.dispose()
        if self._started:
            log.info("stopped")
        if self._redaction is not None:
            self._redaction.uninstall()
            self._redaction = None
        self._started = False


def build_dispatcher(settings: Settings, *, storage: BaseStorage, catalog: Catalog,
                     generations: GenerationService, accounts: AccountService,
                     presenter: Presenter, albums: AlbumCollector | None = None,
                     prompt_helper: PromptHelper | None = None,
                     broadcasts: BroadcastService | None = None) -> Dispatcher:
    """The dispatcher with every router and the services handlers receive by name; the unit tests
    feed updates to exactly this."""
    import handlers

    # One update of a chat at a time at the FSM too (the inbox already orders a chat's updates
    # within a process and keeps a chat in one process): in Redis when the FSM lives there.
    # The Redis lock expires after twice the inbox lease: long enough for any handler, and a
    # dead process's lock must not hold its chat much longer than its inbox lease does.
    create_isolation = getattr(storage, "create_isolation", None)
    isolation = (create_isolation(lock_kwargs={"timeout": max(2 * settings.inbox_lease_seconds, 1)})
                 if create_isolation is not None else SimpleEventIsolation())
    from handlers.albums import AlbumCollector

    models = ModelAdmin(generations.repository, catalog)
    # The /ref screen states the terms the accounts service actually pays.
    terms = accounts.referral or ReferralTerms()
    referrals = ReferralService(generations.repository, bonus=terms.bonus,
                                share_percent=terms.share_percent)
    templates_file = settings.templates_file or TEMPLATES_DATA_FILE
    templates = TemplateService(generations.repository, catalog,
                                load_templates(templates_file, catalog.models()),
                                examples=templates_file.parent / "examples")
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation, settings=settings,
                            catalog=catalog, generations=generations, accounts=accounts,
                            presenter=presenter, albums=albums or AlbumCollector(), models=models,
                            prompt_helper=prompt_helper, referrals=referrals, templates=templates,
                            followups=FollowupService(generations),
                            broadcasts=broadcasts or BroadcastService(generations.repository))
    dispatcher.include_router(handlers.setup_routers())
    return dispatcher


def build_prompt_helper(s: Settings, kie: KieClient, repository: Repository) -> PromptHelper | None:
    """The prompt helper on KIE's chat (same key and HTTP client), or None when switched off."""
    if not s.prompt_helper_enabled:
        return None
    chat = ChatClient(kie, timeout=s.prompt_helper_timeout_seconds)
    return PromptHelper(chat, repository, model=s.prompt_helper_model,
                        price=s.prompt_helper_price, per_minute=s.prompt_helper_per_minute,
                        timeout_s=s.prompt_helper_timeout_seconds)


def build_app(settings: Settings, *, owner: str | None = None,
              presenter: Presenter | None = None, role: str | None = None) -> App:
    """Wire everything from `settings` (`role` overrides PROCESS_ROLE). No network or disk I/O
    happens here."""
    import handlers

    s = settings
    role = role or s.process_role
    if role not in ("all", "web", "worker"):
        raise ValueError(f"unknown process role {role!r}; expected all, web or worker")
    owner = owner or _owner()
    engine = create_engine(s.database_url, pool_size=s.db_pool_size,
                           max_overflow=s.db_max_overflow, pool_timeout=s.db_pool_timeout,
                           transaction_pooler=s.transaction_pooler)
    # Background work yields to the HTTP acknowledgements of this process (bot/loop_share.py).
    share = LoopShare()
    repository = Repository(engine, turn=share.turn)
    media = build_media_store(s)
    catalog = Catalog(price_overrides=s.price_overrides or None, markup=s.price_markup,
                      specs=load_catalog(s.catalog_dir) if s.catalog_dir else None)
    cleanup: list = []
    redis = build_redis(s, cleanup)
    create_limiter, status_limiter = build_kie_limiters(s, cleanup, redis)
    # Per app (its own CollectorRegistry): several apps in one test process never share counts.
    metrics = Metrics(repository=repository)
    kie = KieClient(
        s.kie_api_key.get_secret_value(),
        market_base_url=s.kie_market_base_url,
        upload_base_url=s.kie_upload_base_url,
        timeout=s.kie_timeout_seconds,
        # The submitter needs to know whether a cancelled createTask had its slot (and so may
        # have left): bot/services/pipeline/submit.py SlotNotingLimiter.
        create_limiter=SlotNotingLimiter(create_limiter),
        status_limiter=status_limiter,
        on_response=metrics.kie_response,
    )
    session = KiebotSession(api=TelegramAPIServer.from_base(s.telegram_api_base_url))
    bot = Bot(s.bot_token.get_secret_value(), session=session)
    session.middleware(StaleCallbackAnswers())  # replayed updates answer old buttons
    session.middleware(TelegramMetrics(metrics))  # every API error and 429 of this process
    sender = ChatSender(bot, max_wait=max(1.0, s.lease_seconds / 3))
    downloader = SafeDownloader(s.kie_result_hosts, max_bytes=s.max_result_bytes)
    presenter = presenter if presenter is not None else handlers.build_presenter(catalog)
    config = pipeline_config(s)
    pipeline = Pipeline(
        repository=repository, kie=kie, catalog=catalog, media=media, downloader=downloader,
        sender=sender, presenter=presenter, config=config, owner=owner,
        yield_to_acks=share.yield_to_acks,
    )
    generations = GenerationService(pipeline, daily_free=s.daily_free_generations,
                                    daily_free_model=s.daily_free_model)
    jobs = JobRunner(generations, interval_s=s.job_interval_seconds,
                     progress_interval_s=min(1.0, s.job_interval_seconds),
                     batch_size=config.batch_size)
    pipeline.kick = jobs.kick
    accounts = AccountService(
        repository, signup_bonus=s.signup_bonus, packs=s.topup_packs, admin_ids=s.admin_ids,
        referral=ReferralTerms(bonus=s.referral_bonus, share_percent=s.referral_share_percent),
        signup_rules=SignupRules(invited_only=s.signup_bonus_invited_only,
                                 daily_cap=s.signup_bonus_daily_cap))
    reconciler = PaymentReconciler(bot, accounts, notify=_late_payment_notice(sender))
    jobs.add_periodic("reconcile-payments", reconciler.run,
                      interval_s=RECONCILE_INTERVAL_S)
    # Broadcasts go out from the worker role (jobs run there), one process at a time (a lease).
    broadcaster = BroadcastRunner(
        repository, sender, handlers.broadcast.BroadcastTexts(), owner=owner,
        lease_seconds=s.broadcast_lease_seconds, per_second=s.broadcast_per_second,
        progress_s=s.broadcast_progress_seconds, pass_s=max(1.0, s.broadcast_lease_seconds / 6))
    jobs.add_periodic("broadcast", broadcaster.run, interval_s=min(1.0, s.job_interval_seconds))
    dispatcher = build_dispatcher(
        s, storage=build_fsm_storage(s), catalog=catalog, generations=generations,
        accounts=accounts, presenter=presenter, prompt_helper=build_prompt_helper(s, kie, repository),
    )
    telegram_secret = webhook_secret(s.bot_token.get_secret_value(),
                                     s.kie_callback_secret.get_secret_value())
    drainer = writer = None
    if role != "worker":
        drainer = InboxDrainer(repository, dispatcher, bot, owner=owner,
                               concurrency=s.inbox_concurrency,
                               lease_seconds=s.inbox_lease_seconds)
        writer = InboxWriter(repository, on_stored=drainer.wake)
    web_app = build_web_app(
        generations=generations, repository=repository,
        callback_secret=s.kie_callback_secret.get_secret_value(),
        hmac_key=_secret(s.kie_webhook_hmac_key), media=media,
        webhook=(webhook_handler(writer, secret_token=telegram_secret, bot=bot,
                                 parsed=drainer.parsed if drainer is not None else None,
                                 share=share)
                 if writer is not None and s.webhook_mode else None),
        health_only=role == "worker",
        metrics=(metrics_handler(metrics, token=_secret(s.metrics_token))
                 if s.metrics_enabled else None),
        readiness=build_readiness(repository=repository, media=media, kie=kie, redis=redis),
        share=share,
    )
    return App(
        settings=s, engine=engine, repository=repository, media=media, kie=kie, catalog=catalog,
        bot=bot, dispatcher=dispatcher, sender=sender, downloader=downloader,
        presenter=presenter, generations=generations, accounts=accounts, jobs=jobs,
        web_app=web_app, telegram_secret=telegram_secret, _extra_cleanup=cleanup,
        reconciler=reconciler, inbox_writer=writer, drainer=drainer, role=role, redis=redis,
        metrics=metrics, broadcaster=broadcaster,
    )


def _late_payment_notice(sender: ChatSender):
    """The same "payment received" text the handler sends, for payments credited late; through
    the ChatSender, which paces per chat and waits out 429s (no handler retry applies here)."""
    from aiogram.methods import SendMessage

    from handlers import keyboards
    from handlers.texts import normalise, tr

    async def notify(tg_user: TgUser, user: User, result: PaymentResult) -> None:
        lang = normalise(getattr(user, "language", None))
        await sender.send(tg_user.id, SendMessage(
            chat_id=tg_user.id, text=tr(lang, "paid", credits=result.credits,
                                        balance=result.balance),
            reply_markup=keyboards.main_menu(lang)))

    return notify
