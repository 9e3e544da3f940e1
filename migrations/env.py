"""Alembic environment, configured programmatically by migrations.runner (no alembic.ini).

migrations.runner passes either a live sync connection (config.attributes["connection"], from
AsyncConnection.run_sync) or, for offline --sql output, a URL (config.attributes["url"])."""

from __future__ import annotations

from alembic import context

from storage.schema import metadata

config = context.config


def _run_offline() -> None:
    context.configure(
        url=config.attributes["url"],
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through migrations.runner (it supplies the connection)")
    _run_online(connection)
