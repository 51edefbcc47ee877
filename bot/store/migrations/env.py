"""Alembic environment, configured in code by `bot.store.engine.migrate` (no alembic.ini needed).

The caller passes an open connection in `config.attributes["connection"]`; offline mode (`--sql`) takes
the URL from `config.attributes["url"]`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from bot.store.tables import Base

config = context.config
target_metadata = Base.metadata  # every table, declared in bot/store/tables.py

# Any constant: Postgres sessions migrating the same database wait for each other on it.
MIGRATION_LOCK_KEY = 0x4155_5241  # "AURA"


def run_migrations_offline() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=str(url).startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through bot.store (python -m bot.store upgrade), not the alembic CLI")
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,  # SQLite cannot ALTER most things: later migrations copy tables
        transactional_ddl=True,  # our SQLite connections BEGIN explicitly, so DDL is transactional too
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
