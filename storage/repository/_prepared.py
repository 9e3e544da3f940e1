"""Statements the hot paths run on every update, built once.

Building a SQLAlchemy statement (select/where/values) and computing its cache key cost more CPU
than running it on SQLite: under a crowd of updates statement building was a fifth of the bot's
CPU (py-spy, `make bench --only updates`). A statement object reused with bound parameters is
built once and its cache key is memoised, so each call goes straight to the compiled form."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from storage.direct import driver_sql

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

# SELECT_LEDGER with the user's balance on every row (the balance screen in one statement; a
# user without ledger rows needs SELECT_USER as well).
SELECT_LEDGER_WITH_BALANCE = SELECT_LEDGER.add_columns(
    sa.select(users.c.balance).where(users.c.id == _uid).scalar_subquery().label("user_balance")
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


class DriverMany:
    """An UPDATE run with executemany at the driver level on SQLite, its shared values bound once.

    SQLAlchemy's executemany builds a parameter dict per row and runs every bind processor on
    every occurrence: KIE's callback batch (bench callbacks, 200 at once) spent most of its write
    in that bookkeeping — six datetime conversions of the same `now` per row — 75 µs a row in
    all. Here the statement is compiled once per dialect; the statement's own literals and the
    values every row shares (`shared`) are processed once, the rows' own values (`rows`, the
    same keys in each) once each, and the driver gets plain tuples. Other dialects run the
    statement through SQLAlchemy as before."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any]]] = {}

    def _compile(self, dialect: Any) -> tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = driver_sql(self.statement, dialect)
            processors = dict(compiled.processors)
            literals = {name: _processed(processors, name, value)
                        for name, value in compiled.literals.items()}
            found = self._compiled[dialect.name] = (compiled.sql, compiled.names, processors, literals)
        return found

    async def execute(self, conn: Any, shared: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        dialect = conn.dialect
        if dialect.name != "sqlite":
            await conn.execute(self.statement, [{**shared, **row} for row in rows])
            return
        sql, names, processors, literals = self._compile(dialect)
        fixed = dict(literals)
        fixed.update((name, _processed(processors, name, value)) for name, value in shared.items())
        own = rows[0].keys()
        template = [None if name in own else fixed[name] for name in names]
        slots = [(i, name, processors.get(name)) for i, name in enumerate(names) if name in own]
        params = []
        for row in rows:
            values = template.copy()
            for i, name, processor in slots:
                value = row[name]
                values[i] = value if processor is None or value is None else processor(value)
            params.append(tuple(values))
        await conn.exec_driver_sql(sql, params)


def _processed(processors: dict[str, Any], name: str, value: Any) -> Any:
    processor = processors.get(name)
    return value if processor is None or value is None else processor(value)


@cache
def signup_in_one_statement() -> Any:
    """Postgres: a new user and their signup bonus in one statement, for a plain signup (no
    referral, no promo, no signup rules: nothing to read or decide first).

    The user row is inserted with the bonus as its balance and the bonus's ledger row is inserted
    from what that insert returned, in data-modifying CTEs: one statement is atomic, so run in
    autocommit it costs one round trip where BEGIN, two INSERTs, the balance UPDATE, a SELECT and
    COMMIT took six (a crowd's /start is mostly signups). A user who already exists returns no
    row and writes nothing; a bonus row already present (uq_ledger_signup_once) fails the whole
    statement, so a balance never goes without its ledger row. A zero bonus writes no ledger row."""
    from sqlalchemy.dialects.postgresql import insert

    now = sa.bindparam("now", type_=users.c.created_at.type)
    bonus = sa.bindparam("bonus", type_=sa.Integer)
    new_user = (
        insert(users).values(
            id=_uid, username=sa.bindparam("username", type_=users.c.username.type),
            first_name=sa.bindparam("first_name", type_=users.c.first_name.type),
            last_name=sa.bindparam("last_name", type_=users.c.last_name.type),
            language=sa.bindparam("language", type_=users.c.language.type),
            balance=bonus, blocked=False, created_at=now, last_seen_at=now,
            start_payload=sa.bindparam("start_payload", type_=users.c.start_payload.type),
        )
        .on_conflict_do_nothing(index_elements=[users.c.id])
        .returning(*users.c)
        .cte("new_user")
    )
    bonus_row = (
        sa.insert(credit_ledger).from_select(
            ["user_id", "delta", "reason", "created_at"],
            sa.select(new_user.c.id, bonus, sa.literal("signup_bonus"), now).where(bonus > 0),
        )
        .returning(credit_ledger.c.id)
        .cte("bonus_row")
    )
    return sa.select(new_user).add_cte(bonus_row)
