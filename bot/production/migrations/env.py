"""Alembic environment: our three groups of tables (knowledge, vault, support desk), on the
database of `BOT_DATABASE_URL` (or the connection `bot.production.migrations` passes in)."""

from __future__ import annotations

from alembic import context

from bot.db import make_engine
from bot.production.migrations.metadata import target_metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.config.get_main_option("sqlalchemy.url") or None
    with make_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run them against the database")
run_migrations_online()
