"""generations.prompt and generations.stored_paths as columns.

Until now the prompt travelled inside `options["prompt"]`, and the object path of each stored
result was recomputed from the row (`{user}/{kind}/{id}_{index}_{completed_at}.{ext}`, the
extension taken from the stored URL). Both become columns: `prompt` (text, '' when unknown) and
`stored_paths` (JSON list of object paths, in result order, [] until the storer has stored).

Backfill: every row's prompt moves out of options into the column; rows already `succeeded` get
the paths today's formula gives, so results stored before this migration can still be resent.
The formula is copied here on purpose: a migration must keep meaning what it meant when it was
written, whatever the application's code does later. Offline (`kiebot migrate --sql`) output
starts from an empty database, so there is nothing to backfill there.

The downgrade puts the prompt back into options and drops both columns (the old code recomputes
the paths; the storer still writes objects where that formula says).

Revision ID: 0004_prompt_stored_paths
Revises: 0003_start_payload_refunded
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_prompt_stored_paths"
down_revision = "0003_start_payload_refunded"
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(JSONB(), "postgresql")
# For writing options back: a Python None must stay SQL NULL, not become JSON 'null'.
NullableJson = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BATCH = 500

# The table as this migration sees it (not storage.schema, which follows the code).
generations = sa.table(
    "generations",
    sa.column("id", sa.BigInteger),
    sa.column("user_id", sa.BigInteger),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("options", JsonType),
    sa.column("result_urls", JsonType),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("completed_at", sa.DateTime(timezone=True)),
    sa.column("prompt", sa.Text),
    sa.column("stored_paths", JsonType),
)

# What storage.media.extension_for(None, url) accepted when this migration was written.
_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "mp4", "mov", "webm", "gif", "bin"})


def _extension(url: str) -> str:
    name = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    if "." in name:
        suffix = name.rsplit(".", 1)[1].lower()
        if suffix in _EXTENSIONS:
            return suffix
    return "bin"


def _epoch(value: datetime | None) -> int:
    if value is None:
        return 0
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def stored_paths_by_formula(row: Any) -> list[str]:
    """The paths the code before 0004 read a succeeded row's files from (its stored_path())."""
    if row.status != "succeeded":
        return []
    stamp = _epoch(row.completed_at or row.created_at)
    return [
        f"{row.user_id}/{row.kind}/{row.id}_{index}_{stamp}.{_extension(str(url))}"
        for index, url in enumerate(row.result_urls or [])
    ]


def upgrade() -> None:
    op.add_column("generations", sa.Column("prompt", sa.Text, nullable=False, server_default=""))
    op.add_column(
        "generations",
        sa.Column("stored_paths", JsonType, nullable=False, server_default=sa.text("'[]'")),
    )
    if context.is_offline_mode():
        return
    _rewrite(_upgrade_row)


def downgrade() -> None:
    if not context.is_offline_mode():
        _rewrite(_downgrade_row)
    # SQLite >= 3.35 drops columns in place; neither column carries an index or constraint.
    op.drop_column("generations", "stored_paths")
    op.drop_column("generations", "prompt")


def _upgrade_row(row: Any) -> dict[str, Any] | None:
    options = dict(row.options or {})
    had_prompt = "prompt" in options
    value = options.pop("prompt", None)
    paths = stored_paths_by_formula(row)
    if not had_prompt and not paths:
        return None
    return {
        # The old readers ignored a prompt that was not a string; so does the column.
        "prompt": value if isinstance(value, str) else "",
        "options": options if row.options is not None else None,
        "stored_paths": paths,
    }


def _downgrade_row(row: Any) -> dict[str, Any] | None:
    if not row.prompt:
        return None
    return {"prompt": row.prompt, "options": {**(row.options or {}), "prompt": row.prompt},
            "stored_paths": row.stored_paths}


def _rewrite(change: Callable[[Any], dict[str, Any] | None]) -> None:
    """Apply `change` to every row, in id order, a batch of updates at a time."""
    bind = op.get_bind()
    g = generations.c
    update = (
        sa.update(generations)
        .where(g.id == sa.bindparam("row_id"))
        .values(prompt=sa.bindparam("new_prompt"), options=sa.bindparam("new_options", type_=NullableJson),
                stored_paths=sa.bindparam("new_paths", type_=JsonType))
    )
    for rows in _batches(bind):
        params = []
        for row in rows:
            new = change(row)
            if new is not None:
                params.append({"row_id": row.id, "new_prompt": new["prompt"],
                               "new_options": new["options"], "new_paths": new["stored_paths"]})
        if params:
            bind.execute(update, params)


def _batches(bind: sa.Connection) -> Iterator[list[Any]]:
    g = generations.c
    last_id = None
    while True:
        query = sa.select(generations).order_by(g.id).limit(BATCH)
        if last_id is not None:
            query = query.where(g.id > last_id)
        rows = bind.execute(query).all()
        if not rows:
            return
        yield rows
        last_id = rows[-1].id
