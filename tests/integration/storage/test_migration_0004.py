"""Migration 0004 on SQLite and Postgres: rows written at 0003 (prompt inside options, stored
paths implied by the row) come out right at 0004, and go back unchanged on the way down."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from migrations import runner as migrate
from storage.db import create_engine
from storage.media import extension_for, media_path
from storage.models import GenerationStatus
from storage.repository import Repository

BEFORE = "0003_start_payload_refunded"
AFTER = "0004_prompt_stored_paths"
STORED_AT = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
CREATED_AT = datetime(2026, 3, 1, 11, 59, 0, tzinfo=UTC)
MEDIA = "http://127.0.0.1:8080/media"
Json = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# generations as it stood at 0003 (no prompt, no stored_paths).
OLD_GENERATIONS = sa.table(
    "generations",
    sa.column("id", sa.BigInteger), sa.column("user_id", sa.BigInteger),
    sa.column("chat_id", sa.BigInteger), sa.column("status", sa.String),
    sa.column("kind", sa.String), sa.column("model_key", sa.String), sa.column("cost", sa.Integer),
    sa.column("request_key", sa.String), sa.column("options", Json),
    sa.column("result_urls", Json), sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("completed_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)

# id -> (status, kind, options, result_urls, completed_at) as the pre-0004 code wrote them.
ROWS = {
    1: ("succeeded", "image", {"prompt": "a cat", "aspect_ratio": "1:1"},
        [f"{MEDIA}/7/image/1_0_1772366405.png", f"{MEDIA}/7/image/1_1_1772366405.jpg"], STORED_AT),
    # Supabase signed-style URL with a query; no completed_at (created_at stands in, as before).
    2: ("succeeded", "video", {"prompt": "waves", "duration": "5"},
        ["https://x.supabase.co/storage/v1/object/sign/generations/7/video/2_0_1772366340.mp4?token=abc"],
        None),
    # Still storing: result_urls are KIE's, nothing of ours is stored yet.
    3: ("storing", "image", {"prompt": "a fox", "_source_path": "7/input/rabc.png"},
        ["https://tempfile.aiquickdraw.com/r/abc.png"], STORED_AT),
    4: ("failed", "image", {"prompt": "flagged"}, [], STORED_AT),
    5: ("queued", "image", {"aspect_ratio": "1:1"}, [], None),
    6: ("queued", "image", {"prompt": 5, "aspect_ratio": "1:1"}, [], None),  # never a string
    7: ("queued", "image", None, [], None),
}


async def _write_rows_at_0003(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO users (id, balance, blocked) VALUES (7, 0, false)"))
        for gid, (status, kind, options, urls, completed_at) in ROWS.items():
            await conn.execute(sa.insert(OLD_GENERATIONS).values(
                id=gid, user_id=7, chat_id=7, status=status, kind=kind, model_key="m", cost=0,
                request_key=f"r{gid}", options=options, result_urls=urls, created_at=CREATED_AT,
                completed_at=completed_at, updated_at=CREATED_AT,
            ))


async def _columns(engine) -> set[str]:
    async with engine.connect() as conn:
        return {c["name"] for c in await conn.run_sync(
            lambda c: sa.inspect(c).get_columns("generations"))}


async def _old_rows(engine) -> dict[int, tuple]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(OLD_GENERATIONS.c.id, OLD_GENERATIONS.c.options).order_by(OLD_GENERATIONS.c.id))
        return {row.id: row.options for row in rows}


async def test_rows_written_at_0003_come_out_right_at_0004_and_go_back(db_url):
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine, BEFORE)
        await _write_rows_at_0003(engine)
        # To head: the Repository reads today's columns, and the migrations after 0004 only add
        # columns (the way down below then passes through them with these rows in place).
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()

        repo = Repository(engine)
        got = {gid: await repo.get_generation(gid) for gid in ROWS}
        assert {gid: g.prompt for gid, g in got.items()} == {
            1: "a cat", 2: "waves", 3: "a fox", 4: "flagged", 5: "", 6: "", 7: ""}
        assert all("prompt" not in g.options for g in got.values())
        assert got[1].options == {"aspect_ratio": "1:1"}
        assert got[3].options == {"_source_path": "7/input/rabc.png"}
        # Only stored results have paths: the ones the code before 0004 read the files from.
        assert got[1].stored_paths == ("7/image/1_0_1772366405.png", "7/image/1_1_1772366405.jpg")
        assert got[2].stored_paths == ("7/video/2_0_1772366340.mp4",)
        assert all(got[gid].stored_paths == () for gid in (3, 4, 5, 6, 7))
        assert got[1].status is GenerationStatus.succeeded

        await migrate.downgrade(engine, BEFORE)
        assert not {"prompt", "stored_paths"} & await _columns(engine)
        back = await _old_rows(engine)
        for gid, (_, _, options, _, _) in ROWS.items():
            if gid == 6:  # a non-string prompt was never usable; it does not come back
                assert back[gid] == {"aspect_ratio": "1:1"}
            else:
                assert back[gid] == options, gid
    finally:
        await engine.dispose()


async def test_backfilled_paths_are_where_the_storer_writes(db_url):
    """The migration carries its own copy of the path rule; it must name the objects the
    storer (media_path with the row's completed_at) actually wrote."""
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine, BEFORE)
        await _write_rows_at_0003(engine)
        await migrate.upgrade(engine)
        repo = Repository(engine)
        for gid in (1, 2):
            g = await repo.get_generation(gid)
            stamp = g.completed_at or g.created_at
            expected = tuple(
                media_path(7, g.kind, gid, index, stamp, extension_for(None, url), token="")
                for index, url in enumerate(g.result_urls)
            )
            assert g.stored_paths == expected
    finally:
        await engine.dispose()


async def test_step_by_step_round_trip_keeps_the_schema_usable(db_url):
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine, BEFORE)
        await migrate.upgrade(engine, AFTER)
        assert {"prompt", "stored_paths"} <= await _columns(engine)
        await migrate.downgrade(engine, BEFORE)
        assert not {"prompt", "stored_paths"} & await _columns(engine)
        await migrate.upgrade(engine)
        # Fresh rows at head get the column defaults.
        repo = Repository(engine)
        await repo.register_user(1, username=None, first_name=None, last_name=None, language=None,
                                 signup_bonus=0)
        started = await repo.start_generation(user_id=1, chat_id=1, model_key="m", kind="image",
                                              cost=0, options={}, request_key="k")
        assert started.generation.prompt == "" and started.generation.stored_paths == ()
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO generations (user_id, chat_id, kind, model_key) VALUES (1, 1, 'image', 'm')"))
        raw = await repo.list_library(1, limit=5, statuses=["queued"])
        assert [(g.prompt, g.stored_paths) for g in raw] == [("", ()), ("", ())]
    finally:
        await engine.dispose()


def test_offline_sql_adds_the_columns():
    sql = migrate.postgres_sql()
    assert "ADD COLUMN prompt TEXT DEFAULT '' NOT NULL" in sql
    assert "ADD COLUMN stored_paths JSONB DEFAULT '[]' NOT NULL" in sql
