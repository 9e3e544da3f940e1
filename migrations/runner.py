"""Run the Alembic history in migrations/ without an alembic.ini.

`kiebot migrate` (kiebot/cli.py) calls upgrade(); `kiebot migrate --sql` prints postgres_sql();
`kiebot run` calls ensure_schema() so a fresh SQLite file is ready on first start."""

from __future__ import annotations

import io
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine


from storage.db import create_engine, safe_url
from storage.errors import DatabaseUnavailableError

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(*, output_buffer: io.StringIO | None = None) -> Config:
    config = Config(output_buffer=output_buffer)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions is empty"
    return head


async def upgrade(url: str | None | AsyncEngine, revision: str = "head") -> None:
    await _run(url, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(url: str | None | AsyncEngine, revision: str = "base") -> None:
    await _run(url, lambda cfg: command.downgrade(cfg, revision))


async def current_revision(url: str | None | AsyncEngine) -> str | None:
    engine, owned = _engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
    except (DBAPIError, OSError) as exc:
        raise _unavailable(engine, exc) from exc
    finally:
        if owned:
            await engine.dispose()


async def ensure_schema(url: str | None | AsyncEngine) -> bool:
    """Create or bring the schema up to date; True when a migration ran."""
    if await current_revision(url) == head_revision():
        return False
    await upgrade(url)
    return True


def postgres_sql() -> str:
    """Offline DDL for Postgres (paste into Supabase's SQL editor)."""
    buffer = io.StringIO()
    config = alembic_config(output_buffer=buffer)
    config.attributes["url"] = "postgresql://"
    command.upgrade(config, "head", sql=True)
    return buffer.getvalue()


async def _run(url, action) -> None:
    engine, owned = _engine(url)
    config = alembic_config()

    def _sync(sync_conn) -> None:
        config.attributes["connection"] = sync_conn
        action(config)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(_sync)
    except (DBAPIError, OSError) as exc:
        raise _unavailable(engine, exc) from exc
    finally:
        if owned:
            await engine.dispose()


def _engine(url: str | None | AsyncEngine) -> tuple[AsyncEngine, bool]:
    if isinstance(url, AsyncEngine):
        return url, False
    # Pooler-safe whatever the URL looks like (no statement kept between transactions): the
    # migrations run rarely and the URL may name a transaction pooler auto-detection misses.
    return create_engine(url, transaction_pooler=True), True


def _unavailable(engine: AsyncEngine, exc: BaseException) -> DatabaseUnavailableError:
    """The driver's own reason (`database "x" does not exist`, `password authentication failed
    for user "u"`, `[Errno -2] Name or service not known`), with the URL's password masked."""
    orig = getattr(exc, "orig", None) or exc
    # The adapter's generic `Error` is raised from the driver's own, better-named exception.
    named = orig.__cause__ if type(orig).__name__ == "Error" and orig.__cause__ else orig
    name = type(named).__name__
    text = (str(orig).strip().splitlines() or [""])[0]
    # SQLAlchemy's asyncpg adapter prefixes the real class: "<class 'asyncpg....Error'>: text".
    wrapped = re.match(r"<class '(?:[\w.]+\.)?(\w+)'>:\s*(.*)", text)
    if wrapped:
        name, text = wrapped.groups()
    password = engine.url.password
    if password:
        text = text.replace(str(password), "***")
    reason = f"{name}: {text[:300]}" if text else name
    return DatabaseUnavailableError(f"cannot use the database {safe_url(engine.url)}: {reason}")
