"""The database connection: URLs, the engine and its SQLite pragmas, Alembic migrations, and `Database`,
the base of `Store` that hands out read and write sessions.

Synchronous on purpose (calls take milliseconds; async callers use a thread). Each call opens its own
session, so one store is safe to share between threads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from bot.store.tables import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class StoreError(Exception):
    """The store cannot do what was asked: unknown run, unreachable database, conflicting data."""


# --- engine --------------------------------------------------------------------------------------


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain `postgresql://` URLs get the installed psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"cannot parse the database URL {str(url)!r}: expected e.g. sqlite:///data/aura.db") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {parsed.get_backend_name()!r} in {parsed.render_as_string()}: "
            "use sqlite:///path/to/aura.db or postgresql+psycopg://user:password@host/dbname"
        )
    return parsed


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600), and its directory; tighten an
    existing file (and its -wal/-shm) made wider by an older version. SQLite gives the journal files it
    creates the database file's mode. Other URLs: nothing to do."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite" or _is_sqlite_memory(parsed):
        return
    path = Path(parsed.database or "").expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the database directory {path.parent}: {exc}") from exc
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.exists() and file.stat().st_mode & 0o077:
                file.chmod(0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the database file {path}: {exc}") from exc


def _is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_store_engine(url: str | URL) -> Engine:
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {}
    if _is_sqlite_memory(parsed):
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"no database driver for {parsed.render_as_string()}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, memory=_is_sqlite_memory(parsed))
    return engine


def _configure_sqlite(engine: Engine, *, memory: bool) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for writes.

    pysqlite starts transactions lazily and a reader that later writes can fail at once with "database
    is locked"; so we take over BEGIN: writes (engine option `aura_write`) begin IMMEDIATE and wait for
    the write lock under the busy timeout, reads begin DEFERRED and never block in WAL mode.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not memory:
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, much faster
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("aura_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL once (it stays WAL). The switch needs the database to itself and SQLite
    does not always wait for that under the busy timeout (e.g. while another process migrates it), so
    retry for as long as the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- migrations ----------------------------------------------------------------------------------


def alembic_config(**attributes: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes.update(attributes)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def migrate(engine: Engine, revision: str = "head", *, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the schema to `revision`, inside one transaction."""
    try:
        with engine.execution_options(aura_write=True).begin() as connection:
            config = alembic_config(connection=connection)
            if downgrade:
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
    except CommandError as exc:
        raise StoreError(
            f"cannot migrate {engine.url.render_as_string()} to {revision!r}: {exc}. If the database was "
            "written by a newer aura-sicd, upgrade aura-sicd (or point AURA_STORE_URL elsewhere)"
        ) from exc
    except DBAPIError as exc:
        raise StoreError(f"cannot open the database {engine.url.render_as_string()}: {exc.orig}") from exc


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# --- sessions ------------------------------------------------------------------------------------


class Database:
    """An open database: the engine, read and write sessions, dialect-aware INSERTs."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self._engine = create_store_engine(self.url)
        self._write_engine = self._engine.execution_options(aura_write=True)
        # One writer at a time within the process: SQLite serialises writers anyway, and threads queueing
        # on this lock wait microseconds where SQLite's busy handler would sleep milliseconds.
        self._write_lock = threading.RLock()

    @classmethod
    def open(cls, url: str) -> Self:
        """Open the database, creating the SQLite file's directory, and migrate it to the latest schema."""
        private_sqlite_file(url)
        database = cls(url)
        try:
            migrate(database._engine)
        except BaseException:
            database.close()
            raise
        return database

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads (every query of the store goes through these two, so SQLite locking stays right)."""
        try:
            with Session(self._engine) as session:
                yield session
        except DBAPIError as exc:
            raise StoreError(f"database error on {self.url.render_as_string()}: {exc.orig}") from exc

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session inside one write transaction (BEGIN IMMEDIATE on SQLite), committed on exit."""
        try:
            with self._write_lock, Session(self._write_engine) as session, session.begin():
                yield session
        except DBAPIError as exc:
            raise StoreError(f"database error on {self.url.render_as_string()}: {exc.orig}") from exc

    def insert(self, table: type[Base]) -> Any:
        """An INSERT in the database's dialect, so callers can add ON CONFLICT clauses."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _upsert(self, session: Session, table: type[Base], values: dict[str, Any], keys: list[str]) -> None:
        stmt = self.insert(table).values(values)
        changed = {name: stmt.excluded[name] for name in values if name not in keys}
        session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changed))
