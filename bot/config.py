"""Settings: one class, read from the environment and `.env`, validated at start.

The variable names are fixed because operators and outside scripts rely on them; `.env.example`
lists every one. Secrets are `SecretStr` so they never show in a repr, a log line or a traceback.

`load_settings()` turns every problem into one line per variable (`SettingsError.lines`), never
echoing a value: `kiebot run` prints them and exits 2 before importing anything heavy, so this
module imports only pydantic (and, for PRICE_OVERRIDES, the light KIE catalog). A blank value
is a missing one (`KIE_API_KEY=` as copied from .env.example is "required but not set").
"""

from __future__ import annotations

import ipaddress
import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

# Where `.env` is read from: the working directory (systemd: WorkingDirectory=; Docker: /app).
ENV_FILE = ".env"
# Telegram calls webhooks only over HTTPS and only on these ports (Bot API, setWebhook).
TELEGRAM_WEBHOOK_PORTS = (443, 80, 88, 8443)
OFFICIAL_TELEGRAM_HOST = "api.telegram.org"
DATABASE_SCHEMES = ("sqlite", "sqlite+aiosqlite", "sqlite+pysqlite", "postgres", "postgresql",
                    "postgresql+asyncpg", "postgresql+psycopg2", "postgresql+psycopg")
REDIS_SCHEMES = ("redis", "rediss", "unix")


class SettingsError(Exception):
    """A bad configuration: `lines` holds one `VARIABLE: reason` per bad variable (never a
    value); str() is those lines joined."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


class TopUpPack(BaseModel):
    """One Telegram Stars pack: pay `stars` ⭐ (XTR), receive `credits`."""

    stars: int = Field(gt=0, le=100_000)
    credits: int = Field(gt=0, le=1_000_000)


def _default_packs() -> list[TopUpPack]:
    return [
        TopUpPack(stars=50, credits=50),
        TopUpPack(stars=150, credits=165),
        TopUpPack(stars=500, credits=600),
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
        env_ignore_empty=True,  # `KIE_API_KEY=` (as in .env.example) means "not set"
    )

    # Telegram
    bot_token: SecretStr = Field(alias="BOT_TOKEN")
    telegram_api_base_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_BASE_URL")

    # KIE
    kie_api_key: SecretStr = Field(alias="KIE_API_KEY")
    kie_market_base_url: str = Field("https://api.kie.ai", alias="KIE_MARKET_BASE_URL")
    kie_upload_base_url: str = Field("https://kieai.redpandaai.co", alias="KIE_UPLOAD_BASE_URL")
    kie_callback_secret: SecretStr = Field(alias="KIE_CALLBACK_SECRET")
    kie_webhook_hmac_key: SecretStr | None = Field(None, alias="KIE_WEBHOOK_HMAC_KEY")
    # Hosts result files may be downloaded from (suffix match). Loopback is allowed only when
    # listed here explicitly, which the demo and the tests do for the emulator.
    kie_result_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "aiquickdraw.com",
            "redpandaai.co",
            "kie.ai",
        ],
        alias="KIE_RESULT_HOSTS",
    )
    kie_create_per_10s: int = Field(20, alias="KIE_CREATE_PER_10S", gt=0)
    kie_status_per_second: int = Field(10, alias="KIE_STATUS_PER_SECOND", gt=0)

    # Server
    public_base_url: str | None = Field(None, alias="PUBLIC_BASE_URL")
    # 127.0.0.1 behind a reverse proxy on the same machine; containers need 0.0.0.0 (the
    # Dockerfile sets it). The port: SERVER_PORT, else PORT (which platforms such as Heroku,
    # Render or Cloud Run set), else 8080; `port_variable` says which one was used.
    server_host: str = Field("127.0.0.1", alias="SERVER_HOST")
    server_port: int | None = Field(None, alias="SERVER_PORT", ge=0, le=65535)  # int once loaded
    platform_port: int | None = Field(None, alias="PORT", ge=1, le=65535, exclude=True, repr=False)
    # How long `kiebot run` keeps retrying an unreachable Telegram at start (with backoff)
    # before it gives up with one line naming TELEGRAM_API_BASE_URL.
    start_retry_seconds: float = Field(60.0, alias="START_RETRY_SECONDS", ge=0, le=3600)
    _port_variable: str = PrivateAttr("SERVER_PORT")

    # Storage
    database_url: str = Field("sqlite+aiosqlite:///data/kiebot.sqlite3", alias="DATABASE_URL")
    # Postgres connection pool (SQLite ignores them). A burst of updates waits for a connection
    # rather than failing, so the timeout is long; size + overflow must stay under the
    # server's (or Supabase pooler's) connection limit per process.
    db_pool_size: int = Field(20, alias="DB_POOL_SIZE", ge=1)
    db_max_overflow: int = Field(20, alias="DB_MAX_OVERFLOW", ge=0)
    db_pool_timeout: float = Field(60.0, alias="DB_POOL_TIMEOUT", gt=0)
    # Whether DATABASE_URL goes through a transaction pooler (PgBouncer / Supavisor in
    # transaction mode, e.g. Supabase's port 6543): then no prepared statement is kept between
    # transactions and reads run inside one. auto: guessed from the URL (storage.db
    # looks_like_transaction_pooler: port 6543, a host naming a pooler, ?pgbouncer=true).
    db_transaction_pooler: Literal["auto", "true", "false"] = Field(
        "auto", alias="DB_TRANSACTION_POOLER")
    media_store: Literal["local", "supabase"] = Field("local", alias="MEDIA_STORE")
    media_dir: Path = Field(Path("data/media"), alias="MEDIA_DIR")
    supabase_url: str | None = Field(None, alias="SUPABASE_URL")
    supabase_service_role_key: SecretStr | None = Field(None, alias="SUPABASE_SERVICE_ROLE_KEY")
    supabase_bucket: str = Field("generations", alias="SUPABASE_BUCKET")
    redis_url: str | None = Field(None, alias="REDIS_URL")

    # Business rules
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list, alias="ADMIN_IDS")
    signup_bonus: int = Field(50, alias="SIGNUP_BONUS", ge=0)
    max_in_flight: int = Field(3, alias="MAX_IN_FLIGHT", ge=1)
    # JSON object {model_key: price}, overriding the catalog's prices without a code change.
    price_overrides: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict,
                                                                 alias="PRICE_OVERRIDES")
    # Multiplies every price of the model data files (1.2 = +20 %); not PRICE_OVERRIDES' prices.
    price_markup: Decimal = Field(Decimal(1), alias="PRICE_MARKUP", gt=0, le=100)
    # A directory of model data files (*.toml) replacing the packaged kie_client/catalog/data.
    catalog_dir: Path | None = Field(None, alias="CATALOG_DIR")
    topup_packs: Annotated[list[TopUpPack], NoDecode] = Field(default_factory=_default_packs,
                                                              alias="TOPUP_PACKS")
    image_expiry_minutes: int = Field(30, alias="IMAGE_EXPIRY_MINUTES", gt=0)
    video_expiry_minutes: int = Field(60, alias="VIDEO_EXPIRY_MINUTES", gt=0)
    submit_unknown_refund_minutes: int = Field(20, alias="SUBMIT_UNKNOWN_REFUND_MINUTES", gt=0)
    max_result_bytes: int = Field(300 * 1024 * 1024, alias="MAX_RESULT_BYTES", gt=0)
    # Pipeline timing (issue 6). Production defaults; the tests shorten them.
    job_interval_seconds: float = Field(5.0, alias="JOB_INTERVAL_SECONDS", gt=0)
    lease_seconds: int = Field(300, alias="LEASE_SECONDS", gt=0)
    callback_grace_seconds: float = Field(60.0, alias="CALLBACK_GRACE_SECONDS", ge=0)
    poll_initial_seconds: float = Field(3.0, alias="POLL_INITIAL_SECONDS", gt=0)
    kie_timeout_seconds: float = Field(30.0, alias="KIE_TIMEOUT_SECONDS", gt=0)
    # Pacing (issue 11): rows claimed per pass / handled at once per stage. Deliveries need
    # enough uploads in flight to fill Telegram's 30 messages/s; submit waits on KIE's window.
    submit_concurrency: int = Field(2, alias="SUBMIT_CONCURRENCY", ge=1)
    poll_batch: int = Field(100, alias="POLL_BATCH", ge=1)
    poll_concurrency: int = Field(20, alias="POLL_CONCURRENCY", ge=1)
    store_batch: int = Field(50, alias="STORE_BATCH", ge=1)
    store_concurrency: int = Field(16, alias="STORE_CONCURRENCY", ge=1)
    deliver_batch: int = Field(100, alias="DELIVER_BATCH", ge=1)
    deliver_concurrency: int = Field(60, alias="DELIVER_CONCURRENCY", ge=1)

    # Processes (README "Running several processes"): `all` does everything; `web` takes
    # Telegram's updates (webhook or polling), KIE callbacks and /media and drains the update
    # inbox; `worker` runs the pipeline jobs only. `kiebot run --role` overrides it.
    process_role: Literal["all", "web", "worker"] = Field("all", alias="PROCESS_ROLE")
    # Chats whose updates are handled at once (one update per chat at a time). A handler spends
    # most of its time waiting on Telegram, the database and Redis, so a crowd needs many at
    # once: at 32 the bench's crowd was bound by that wait, not by CPU (Postgres 46 % of bare
    # aiogram at 32, 55 % at 128). The connections they use are bounded by the pool.
    inbox_concurrency: int = Field(128, alias="INBOX_CONCURRENCY", gt=0, le=1000)
    # A claimed update's lease, renewed while it is handled; a dead process's updates are
    # handled again once it runs out.
    inbox_lease_seconds: float = Field(30.0, alias="INBOX_LEASE_SECONDS", gt=0)

    # Texts Telegram requires from bots selling digital goods.
    paysupport_text: str | None = Field(None, alias="PAYSUPPORT_TEXT")
    terms_text: str | None = Field(None, alias="TERMS_TEXT")
    privacy_text: str | None = Field(None, alias="PRIVACY_TEXT")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")

    # Observability (README "Metrics, logs and errors"): log lines as text or one JSON object each; /metrics
    # (Prometheus) on the server's port, behind a bearer token when METRICS_TOKEN is set;
    # errors to Sentry when SENTRY_DSN is set (secrets scrubbed from every event).
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")
    metrics_enabled: bool = Field(True, alias="METRICS_ENABLED")
    metrics_token: SecretStr | None = Field(None, alias="METRICS_TOKEN")
    sentry_dsn: SecretStr | None = Field(None, alias="SENTRY_DSN")
    sentry_environment: str | None = Field(None, alias="SENTRY_ENVIRONMENT", max_length=64)

    # photo templates (issue 14)
    # Photo templates (README "Photo templates"): the data file, checked against the catalog at
    # start (one line naming file, template and field); unset = the packaged one.
    templates_file: Path | None = Field(None, alias="TEMPLATES_FILE", validate_default=True)

    @field_validator("templates_file")
    @classmethod
    def _templates_load(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        from bot.templates import TemplateError, load_templates  # plain data, as the catalog
        from kie_client.catalog import CatalogError, load_catalog

        try:
            catalog_dir = info.data.get("catalog_dir")
            specs = load_catalog(catalog_dir) if catalog_dir else None
        except CatalogError:
            return value  # CATALOG_DIR's own line says what is wrong
        try:
            load_templates(value, specs)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return value
    # prompt helper (issue 14)
    # "✨ Improve" on the summary card: KIE's chat completions (same key) rewrite the prompt in
    # English. Free unless priced (⭐ per press, refunded when the chat fails); a few per minute
    # per user; a slow chat is given up after the timeout (the original prompt stays).
    prompt_helper_enabled: bool = Field(True, alias="PROMPT_HELPER_ENABLED")
    prompt_helper_model: str = Field("gemini-3-flash", alias="PROMPT_HELPER_MODEL",
                                     pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    prompt_helper_price: int = Field(0, alias="PROMPT_HELPER_PRICE", ge=0, le=1000)
    prompt_helper_per_minute: int = Field(3, alias="PROMPT_HELPER_PER_MINUTE", ge=1, le=60)
    prompt_helper_timeout_seconds: float = Field(20.0, alias="PROMPT_HELPER_TIMEOUT_SECONDS",
                                                 gt=0, le=120)
    # referrals, promo codes, daily free (issue 14)
    # Paid to the friend and to the inviter on the friend's first Stars purchase (never on
    # signup), and the inviter's share (percent, rounded down) of each of the friend's purchases.
    referral_bonus: int = Field(25, alias="REFERRAL_BONUS", ge=0, le=1_000_000)
    referral_share_percent: int = Field(5, alias="REFERRAL_SHARE_PERCENT", ge=0, le=100)
    # The signup bonus's guard against farming, off by default: only for users arriving with a
    # valid ref_/promo_ deep link, and/or at most N signup bonuses per UTC day (0 = no cap).
    signup_bonus_invited_only: bool = Field(False, alias="SIGNUP_BONUS_INVITED_ONLY")
    signup_bonus_daily_cap: int = Field(0, alias="SIGNUP_BONUS_DAILY_CAP", ge=0)
    # Free generations per user per UTC day on one model (0 = off): DAILY_FREE_MODEL, or the
    # cheapest image model on sale when unset.
    daily_free_generations: int = Field(0, alias="DAILY_FREE_GENERATIONS", ge=0, le=100)
    daily_free_model: str | None = Field(None, alias="DAILY_FREE_MODEL", max_length=64)

    @field_validator("daily_free_model", mode="before")
    @classmethod
    def _blank_free_model_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
    # broadcast and support (issue 14)
    # Broadcast messages per second at most (Telegram allows 30 overall; the rest is left to
    # deliveries and replies, which also get the shared budget's slots first).
    broadcast_per_second: int = Field(20, alias="BROADCAST_PER_SECOND", ge=1, le=30)
    # The sending worker's lease on a broadcast: another process takes over only after this.
    broadcast_lease_seconds: float = Field(30.0, alias="BROADCAST_LEASE_SECONDS", gt=0)
    # How often the admin's progress card is edited at most.
    broadcast_progress_seconds: float = Field(3.0, alias="BROADCAST_PROGRESS_SECONDS", gt=0)

    @field_validator("log_format", "db_transaction_pooler", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_token", "sentry_dsn", "sentry_environment", mode="before")
    @classmethod
    def _blank_observability_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metrics_token")
    @classmethod
    def _token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        raw = value.get_secret_value() if value is not None else None
        if raw is not None and (len(raw) < 16 or not raw.isascii() or not raw.isprintable()
                                or " " in raw):
            raise ValueError("must be at least 16 printable ASCII characters without spaces "
                             "(openssl rand -hex 32)")
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _dsn_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value.get_secret_value().strip())
            ok = parts.scheme in ("http", "https") and parts.hostname and parts.username
        except ValueError:
            ok = False
        if not ok or not parts.path.strip("/"):
            raise ValueError("must be the DSN Sentry shows, https://<key>@<host>/<project id>")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            return [int(p) for p in parts]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("kie_result_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "public_base_url",
        "supabase_url",
        "redis_url",
        "paysupport_text",
        "terms_text",
        "privacy_text",
        "catalog_dir",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kie_webhook_hmac_key", "supabase_service_role_key", mode="before")
    @classmethod
    def _blank_secret_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bot_token", "kie_api_key", "kie_callback_secret", mode="before")
    @classmethod
    def _required_secret(cls, value: object) -> object:
        # Blank (or only spaces) is missing, whichever way it arrived (.env, environment, kwargs).
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(MISSING)
        return value.strip() if isinstance(value, str) else value

    @field_validator(
        "telegram_api_base_url", "kie_market_base_url", "kie_upload_base_url", "public_base_url",
        "supabase_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        check_http_url(value)
        return value.strip().rstrip("/")

    @field_validator("public_base_url")
    @classmethod
    def _telegram_can_call_it(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Telegram's own servers call only HTTPS on 443, 80, 88 or 8443 and only public
        # addresses; a self-hosted Bot API server (and the test kit's fake) may use any URL.
        api = info.data.get("telegram_api_base_url") or ""
        if value is None or (urlsplit(api).hostname or "") != OFFICIAL_TELEGRAM_HOST:
            return value
        parts = urlsplit(value)
        if parts.scheme != "https":
            raise ValueError("must be an https:// URL: Telegram calls webhooks over HTTPS only")
        if parts.port is not None and parts.port not in TELEGRAM_WEBHOOK_PORTS:
            raise ValueError(
                f"port {parts.port} is not one Telegram calls webhooks on "
                f"({', '.join(map(str, TELEGRAM_WEBHOOK_PORTS))}); put a reverse proxy in front")
        if _local_host(parts.hostname or ""):
            raise ValueError("names a loopback or private address, which Telegram cannot reach")
        return value

    @field_validator("supabase_url", "supabase_service_role_key")
    @classmethod
    def _supabase_needs(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.data.get("media_store") == "supabase":
            raise ValueError(f"{MISSING} (MEDIA_STORE=supabase needs it)")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        try:
            parts = urlsplit(value)
            port = parts.port  # raises on a port that is not a number or out of range
        except ValueError:
            raise ValueError("cannot be parsed as a URL (e.g. redis://127.0.0.1:6379/0)") from None
        if parts.scheme not in REDIS_SCHEMES:
            raise ValueError("must be a redis://, rediss:// or unix:// URL, "
                             "e.g. redis://127.0.0.1:6379/0")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("has no host, e.g. redis://127.0.0.1:6379/0")
        if parts.scheme == "unix" and not parts.path:
            raise ValueError("has no socket path, e.g. unix:///run/redis/redis.sock")
        database = parts.path.strip("/") if parts.scheme != "unix" else ""
        if database and not database.isdigit():
            raise ValueError("the database after the host must be a number (redis://host:6379/0)")
        del port
        return value

    @field_validator("price_overrides", mode="before")
    @classmethod
    def _price_json(cls, value: object) -> object:
        value = _json_value(value, "an object such as {\"seedream_45_t2i\": 10}")
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object such as {\"seedream_45_t2i\": 10}")
        return value

    @field_validator("price_overrides")
    @classmethod
    def _known_models(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            return value
        from kie_client.catalog import MODELS  # plain data (kie_client's __init__ loads httpx)

        known = [spec.key for spec in MODELS]
        unknown = [key for key in value if key not in known]
        if unknown:
            raise ValueError(f"unknown model {', '.join(map(repr, unknown))}; "
                             f"known models: {', '.join(known)}")
        negative = [key for key, price in value.items() if price < 0]
        if negative:
            raise ValueError(f"price of {', '.join(negative)} must be a whole number >= 0")
        return value

    @field_validator("topup_packs", mode="before")
    @classmethod
    def _packs_json(cls, value: object) -> object:
        value = _json_value(value, 'a list such as [{"stars": 50, "credits": 50}]')
        if not isinstance(value, list):
            raise ValueError('must be a JSON list such as [{"stars": 50, "credits": 50}]')
        if not value:
            raise ValueError("needs at least one pack (or leave it unset for the defaults)")
        return value

    @field_validator("topup_packs")
    @classmethod
    def _distinct_packs(cls, value: list[TopUpPack]) -> list[TopUpPack]:
        stars = [p.stars for p in value]
        if len(set(stars)) != len(stars):
            raise ValueError("two packs have the same price in Stars")
        return value

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        head, sep, tail = raw.partition(":")
        if not (sep and head.isdigit() and tail):
            raise ValueError("must look like <digits>:<secret>, as BotFather issues it")
        return value

    @field_validator("kie_callback_secret")
    @classmethod
    def _secret_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (openssl rand -hex 32)")
        return value

    @field_validator("catalog_dir")
    @classmethod
    def _catalog_loads(cls, value: Path | None) -> Path | None:
        if value is not None:
            from kie_client.catalog import CatalogError, load_catalog  # plain data, as above

            try:
                load_catalog(value)
            except CatalogError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _resolve_port(self) -> Settings:
        if self.server_port is None:
            self.server_port = self.platform_port if self.platform_port is not None else 8080
            self._port_variable = "PORT" if self.platform_port is not None else "SERVER_PORT"
        return self

    @property
    def port_variable(self) -> str:
        """The variable the listening port came from (SERVER_PORT, or PORT set by a platform)."""
        return self._port_variable

    def __repr_args__(self):  # type: ignore[override]
        # Database and Redis URLs are plain strings (every driver wants them so) but carry
        # passwords: show them masked.
        for name, value in super().__repr_args__():
            if name in _URL_FIELDS and isinstance(value, str):
                value = mask_url_password(value)
            yield name, value

    def url_passwords(self) -> list[str]:
        """Passwords inside DATABASE_URL / REDIS_URL, for the log redaction layer."""
        found = [url_password(getattr(self, name)) for name in _URL_FIELDS]
        return [p for p in found if p]

    @property
    def transaction_pooler(self) -> bool | None:
        """DB_TRANSACTION_POOLER as storage.db.create_engine takes it (None: guess from the URL)."""
        return {"auto": None, "true": True, "false": False}[self.db_transaction_pooler]

    @property
    def webhook_mode(self) -> bool:
        """With a public URL Telegram and KIE call us; without it we long-poll and poll."""
        return self.public_base_url is not None

    def price_override_decimal(self) -> dict[str, Decimal]:
        return {k: Decimal(v) for k, v in self.price_overrides.items()}


_URL_FIELDS = ("database_url", "redis_url")


def url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def mask_url_password(url: str) -> str:
    password = url_password(url)
    return url.replace(f":{password}@", ":***@", 1) if password else url


MISSING = "is required but not set"


def check_http_url(value: str) -> None:
    """An absolute http(s) URL with a host; the message never repeats the value."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 — raises on a port that is not a number or out of range
    except ValueError:
        raise ValueError("cannot be parsed as a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s):// URL with a host, e.g. https://bot.example.com")


def check_database_url(value: str) -> str:
    """The schemes storage.db accepts, and a host for Postgres (the driver reports the rest:
    a wrong password or database at start, with the password masked)."""
    value = value.strip()
    if not value:
        raise ValueError(MISSING)
    scheme, sep, _ = value.partition("://")
    if not sep or scheme.lower() not in DATABASE_SCHEMES:
        raise ValueError("must be a sqlite:// or postgresql:// URL, e.g. "
                         "postgresql://user:password@host:5432/dbname")
    if scheme.lower().startswith("postgres"):
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018
        except ValueError:
            raise ValueError("cannot be parsed as a URL (is the port a number?)") from None
        if not parts.hostname:
            raise ValueError("has no host, e.g. postgresql://user:password@host:5432/dbname")
    return value


def _json_value(value: object, example: str) -> object:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        # The position, not the text: it may hold anything the operator pasted.
        raise ValueError(f"is not valid JSON ({exc.msg} at character {exc.pos + 1}); "
                         f"expected {example}") from None


def _local_host(host: str) -> bool:
    name = host.lower()
    if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: not resolved here (settings do no network I/O)
    return not address.is_global


class DatabaseSettings(BaseSettings):
    """The subset `kiebot migrate` / `kiebot backup` need: an operator migrating Supabase has no
    bot token at hand."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8",
                                      extra="ignore", env_ignore_empty=True)

    database_url: str = Field("sqlite+aiosqlite:///data/kiebot.sqlite3", alias="DATABASE_URL")
    # Postgres connection pool (SQLite ignores them). A burst of updates waits for a connection
    # rather than failing, so the timeout is long; size + overflow must stay under the
    # server's (or Supabase pooler's) connection limit per process.
    db_pool_size: int = Field(20, alias="DB_POOL_SIZE", ge=1)
    db_max_overflow: int = Field(20, alias="DB_MAX_OVERFLOW", ge=0)
    db_pool_timeout: float = Field(60.0, alias="DB_POOL_TIMEOUT", gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return check_database_url(value)


def load_settings(**overrides: object) -> Settings:
    """Build Settings or raise SettingsError naming every bad variable (values never echoed)."""
    return _load(Settings, overrides)


def load_database_settings(**overrides: object) -> DatabaseSettings:
    return _load(DatabaseSettings, overrides)


def _load(cls: Any, overrides: dict[str, object]) -> Any:
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(error_lines(exc)) from None
    except _SourceError as exc:
        # A value pydantic-settings itself could not decode (every JSON field decodes in its
        # validator, so this is a safety net): name the field, not the value.
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "settings"
        raise SettingsError([f"{field.upper()}: could not be parsed"]) from None
    except OSError as exc:  # .env exists but cannot be read
        reason = exc.strerror or type(exc).__name__
        raise SettingsError([f"{ENV_FILE}: cannot be read ({reason})"]) from None


def error_lines(exc: ValidationError) -> list[str]:
    """One `VARIABLE: reason[; reason]` line per variable, in the order pydantic found them."""
    reasons: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False, include_input=False):
        loc = err.get("loc") or ("settings",)
        name = str(loc[0]).upper()
        kind = err.get("type", "")
        msg = MISSING if kind == "missing" else str(err.get("msg", "is invalid"))
        msg = msg.removeprefix("Value error, ")
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
        if where:
            msg = f"{where.lstrip('.')}: {msg}"
        if msg not in reasons.setdefault(name, []):
            reasons[name].append(msg)
    return [f"{name}: {'; '.join(msgs)}" for name, msgs in reasons.items()]
