"""Statements the hot paths run on every update, built once.

Building a SQLAlchemy statement (select/where/values) and computing its cache key cost more CPU
than running it on SQLite: under a crowd of updates statement building was a fifth of the bot's
CPU (py-spy, `make bench --only updates`). A statement object reused with bound parameters is
built once and its cache key is memoised, so each call goes straight to the compiled form."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from storage.schema import credit_ledger, generations, users

_uid = sa.bindparam("uid")

SELECT_USER = sa.select(users).where(users.c.id == _uid)

# The user and whether they wait for a result (register_user: then last_seen_at must be exact).
SELECT_USER_AWAITING = sa.select(
    users,
    sa.select(generations.c.id)
    .where(generations.c.user_id == _uid, generations.c.delivered_at.is_(None))
    .exists().label("awaiting_delivery"),
).where(users.c.id == _uid)

SELECT_LEDGER = (
    sa.select(credit_ledger).where(credit_ledger.c.user_id == _uid)
    .order_by(credit_ledger.c.created_at.desc(), credit_ledger.c.id.desc())
    .limit(sa.bindparam("limit"))
)

ADD_TO_BALANCE = (
    sa.update(users).where(users.c.id == _uid)
    .values(balance=users.c.balance + sa.bindparam("amount"))
)


@cache
def insert_once(dialect: str, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id for `dialect`; values are given as
    execute() parameters."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing().returning(table.c.id)
