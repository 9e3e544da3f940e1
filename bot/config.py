"""Settings: one class, read from the environment and `.env`, validated at start.

The variable names are fixed because operators and outside scripts rely on them; `.env.example`
lists every one. Secrets are `SecretStr` so they never show in a repr, a log line or a traceback.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kie_client.catalog import CatalogError, load_catalog


class SettingsError(Exception):
    """Raised with a message that names each missing or bad variable (never its secret value)."""


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
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
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
    server_host: str = Field("127.0.0.1", alias="SERVER_HOST")
    server_port: int = Field(8080, alias="SERVER_PORT", ge=0, le=65535)

    # Storage
    database_url: str = Field("sqlite+aiosqlite:///data/kiebot.sqlite3", alias="DATABASE_URL")
    # Postgres connection pool (SQLite ignores them). A burst of updates waits for a connection
    # rather than failing, so the timeout is long; size + overflow must stay under the
    # server's (or Supabase pooler's) connection limit per process.
    db_pool_size: int = Field(20, alias="DB_POOL_SIZE", ge=1)
    db_max_overflow: int = Field(20, alias="DB_MAX_OVERFLOW", ge=0)
    db_pool_timeout: float = Field(60.0, alias="DB_POOL_TIMEOUT", gt=0)
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
    price_overrides: dict[str, int] = Field(default_factory=dict, alias="PRICE_OVERRIDES")
    # Multiplies every price of the model data files (1.2 = +20 %); not PRICE_OVERRIDES' prices.
    price_markup: Decimal = Field(Decimal(1), alias="PRICE_MARKUP", gt=0, le=100)
    # A directory of model data files (*.toml) replacing the packaged kie_client/catalog/data.
    catalog_dir: Path | None = Field(None, alias="CATALOG_DIR")
    topup_packs: list[TopUpPack] = Field(default_factory=_default_packs, alias="TOPUP_PACKS")
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
    # Chats whose updates are handled at once (one update per chat at a time); also what
    # bounds the database connections handlers hold.
    inbox_concurrency: int = Field(32, alias="INBOX_CONCURRENCY", gt=0, le=1000)
    # A claimed update's lease, renewed while it is handled; a dead process's updates are
    # handled again once it runs out.
    inbox_lease_seconds: float = Field(30.0, alias="INBOX_LEASE_SECONDS", gt=0)

    # Texts Telegram requires from bots selling digital goods.
    paysupport_text: str | None = Field(None, alias="PAYSUPPORT_TEXT")
    terms_text: str | None = Field(None, alias="TERMS_TEXT")
    privacy_text: str | None = Field(None, alias="PRIVACY_TEXT")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")

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

    @field_validator(
        "telegram_api_base_url", "kie_market_base_url", "kie_upload_base_url", "public_base_url",
        "supabase_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        AnyHttpUrl(value)  # raises with a clear message on garbage
        return value.rstrip("/")

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
            try:
                load_catalog(value)
            except CatalogError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _supabase_complete(self) -> Settings:
        if self.media_store == "supabase" and not (self.supabase_url and self.supabase_service_role_key):
            raise ValueError(
                "MEDIA_STORE=supabase needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
            )
        return self

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


class DatabaseSettings(BaseSettings):
    """The subset `kiebot migrate` needs: an operator migrating Supabase has no bot token at hand."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field("sqlite+aiosqlite:///data/kiebot.sqlite3", alias="DATABASE_URL")
    # Postgres connection pool (SQLite ignores them). A burst of updates waits for a connection
    # rather than failing, so the timeout is long; size + overflow must stay under the
    # server's (or Supabase pooler's) connection limit per process.
    db_pool_size: int = Field(20, alias="DB_POOL_SIZE", ge=1)
    db_max_overflow: int = Field(20, alias="DB_MAX_OVERFLOW", ge=0)
    db_pool_timeout: float = Field(60.0, alias="DB_POOL_TIMEOUT", gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")


def load_settings(**overrides: object) -> Settings:
    """Build Settings or raise SettingsError naming every bad variable (values never echoed)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err.get("loc") or ("settings",)
            name = str(loc[0]).upper()
            kind = err.get("type", "")
            msg = "is required but not set" if kind == "missing" else err.get("msg", "is invalid")
            lines.append(f"  {name}: {msg}")
        raise SettingsError("Invalid configuration:\n" + "\n".join(lines)) from None
