"""Bad input and broken databases give typed errors and write nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage.db import create_engine, normalise_url
from storage.errors import (
    DatabaseUnavailableError,
    DatabaseURLError,
    InvalidAmountError,
    InvalidFieldError,
    StorageError,
    UnknownUserError,
)
from storage.repository import Repository
from storage.schema import credit_ledger, generations, payments, users


async def _counts(engine):
    async with engine.connect() as conn:
        return [
            await conn.scalar(sa.select(sa.func.count()).select_from(t))
            for t in (users, generations, credit_ledger, payments)
        ]


async def _user(repo):
    await repo.register_user(1, username=None, first_name=None, last_name=None, language=None, signup_bonus=20)


@pytest.mark.parametrize("amount", [-1, 10**9 + 1, 1.5, "5", True, None])
async def test_bad_amounts_are_refused_before_any_write(repo, engine, amount):
    await _user(repo)
    before = await _counts(engine)
    with pytest.raises(InvalidAmountError):
        await repo.start_generation(
            user_id=1, chat_id=1, model_key="m", kind="image", cost=amount, options={}, request_key="k"
        )
    with pytest.raises(InvalidAmountError):
        await repo.credit_purchase(user_id=1, charge_id="c", stars=1, credits=amount, payload=None)
    with pytest.raises(InvalidAmountError):
        await repo.admin_set(1, amount, admin_id=1, note=None)
    with pytest.raises(InvalidAmountError):
        await repo.register_user(2, username=None, first_name=None, last_name=None, language=None,
                                 signup_bonus=amount)
    assert await _counts(engine) == before


async def test_zero_where_it_makes_no_sense(repo, engine):
    await _user(repo)
    before = await _counts(engine)
    with pytest.raises(InvalidAmountError):
        await repo.credit_purchase(user_id=1, charge_id="c", stars=1, credits=0, payload=None)
    with pytest.raises(InvalidAmountError):
        await repo.admin_adjust(1, 0, admin_id=1, note=None)
    with pytest.raises(InvalidAmountError):
        await repo.admin_adjust(1, -(10**9 + 1), admin_id=1, note=None)
    assert await _counts(engine) == before


async def test_unknown_user_writes_nothing(repo, engine):
    before = await _counts(engine)
    with pytest.raises(UnknownUserError) as info:
        await repo.start_generation(
            user_id=42, chat_id=42, model_key="m", kind="image", cost=1, options={}, request_key="k"
        )
    assert info.value.user_id == 42 and "42" in str(info.value)
    with pytest.raises(UnknownUserError):
        await repo.credit_purchase(user_id=42, charge_id="c", stars=1, credits=1, payload=None)
    with pytest.raises(UnknownUserError):
        await repo.admin_set(42, 5, admin_id=1, note=None)
    assert await _counts(engine) == before


async def test_bad_fields_and_ids(repo, engine):
    await _user(repo)
    before = await _counts(engine)
    with pytest.raises(InvalidFieldError):
        await repo.start_generation(
            user_id=1, chat_id=1, model_key="", kind="image", cost=1, options={}, request_key="k"
        )
    with pytest.raises(InvalidFieldError):
        await repo.start_generation(
            user_id=1, chat_id=1, model_key="m", kind="image", cost=1, options="x", request_key="k"
        )
    with pytest.raises(InvalidFieldError):
        await repo.get_user("1")
    with pytest.raises(InvalidFieldError):
        await repo.get_user(2**70)
    with pytest.raises(InvalidFieldError):
        await repo.credit_purchase(user_id=1, charge_id="", stars=1, credits=1, payload=None)
    assert await _counts(engine) == before


async def test_duplicate_task_id_is_a_storage_error_and_changes_nothing(repo):
    await _user(repo)
    a = (await repo.start_generation(user_id=1, chat_id=1, model_key="m", kind="image", cost=1,
                                     options={}, request_key="a")).generation
    b = (await repo.start_generation(user_id=1, chat_id=1, model_key="m", kind="image", cost=1,
                                     options={}, request_key="b")).generation
    assert await repo.transition(a.id, from_statuses={"queued"}, to_status="generating", task_id="T")
    with pytest.raises(StorageError, match="constraint"):
        await repo.transition(b.id, from_statuses={"queued"}, to_status="generating", task_id="T")
    assert (await repo.get_generation(b.id)).status == "queued"


def test_url_normalisation():
    assert normalise_url(None) == "sqlite+aiosqlite:///data/kiebot.sqlite3"
    assert normalise_url("postgres://u:p@h:6543/db") == "postgresql+asyncpg://u:p@h:6543/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    with pytest.raises(DatabaseURLError):
        normalise_url("mysql://u:p@h/db")


def test_postgres_engine_disables_prepared_statement_caches():
    engine = create_engine("postgres://u:secret@127.0.0.1:6543/postgres")
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    assert kwargs["prepared_statement_cache_size"] == 0
    assert "secret" not in repr(engine) and "secret" not in repr(Repository(engine))


async def test_postgres_connections_use_no_statement_cache(pg_url):
    # Through a transaction pooler (DB_TRANSACTION_POOLER=true; guessed for Supabase's 6543,
    # tests/integration/storage/test_pg_round_trips.py): a direct URL keeps its statements.
    engine = create_engine(pg_url.replace("postgresql+asyncpg://", "postgresql://"),
                           transaction_pooler=True)
    seen = []
    sa.event.listen(engine.sync_engine, "do_connect", lambda d, r, cargs, cparams: seen.append(cparams))
    try:
        async with engine.connect() as conn:
            for _ in range(3):  # the same statement repeatedly, as through a pooler
                assert await conn.scalar(sa.text("SELECT 1")) == 1
    finally:
        await engine.dispose()
    assert seen and seen[0]["statement_cache_size"] == 0
    assert seen[0]["prepared_statement_cache_size"] == 0
    assert callable(seen[0]["prepared_statement_name_func"])


async def test_default_engine_creates_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = create_engine(None)
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() >= 1000
    finally:
        await engine.dispose()
    assert (tmp_path / "data" / "kiebot.sqlite3").exists()


async def test_unreachable_postgres_is_a_clear_error_without_password(unused_port):
    engine = create_engine(f"postgresql://kiebot:s3cr3t-pw@127.0.0.1:{unused_port}/nope")
    repo = Repository(engine)
    try:
        with pytest.raises(DatabaseUnavailableError) as info:
            await repo.get_user(1)
    finally:
        await engine.dispose()
    assert "unavailable" in str(info.value) and "s3cr3t-pw" not in str(info.value)


async def test_corrupt_sqlite_is_a_clear_error(tmp_path):
    path = tmp_path / "kiebot.sqlite3"
    path.write_bytes(b"this is not a database file" * 200)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(StorageError, match="not a database"):
            await Repository(engine).get_user(1)
    finally:
        await engine.dispose()


async def test_missing_schema_is_a_storage_error(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.sqlite3")
    try:
        with pytest.raises(StorageError):
            await Repository(engine).get_user(1)
    finally:
        await engine.dispose()
