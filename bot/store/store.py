"""The store: runs, episodes, iterations, guidance history and the audit trail, in SQLite or Postgres.

Synchronous on purpose (calls take milliseconds; async callers use a thread). Each call opens its own
session, so one Store is safe to share between threads. Records go in and come out as the pydantic
models of `bot.records`, stored with `model_dump(mode="json")`.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from pydantic import BaseModel, Field
from sqlalchemy import Engine, create_engine, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from bot.records import (
    Episode,
    EpisodeMetrics,
    EpisodeStatus,
    GuidanceEntry,
    IterationRecord,
    utcnow,
)
from bot.store.tables import (
    AuditRow,
    Base,
    EpisodeRow,
    GuidanceRow,
    IterationRow,
    RunRow,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000

RunKind = Literal["cli", "github", "training", "eval"]
RUN_KINDS: tuple[str, ...] = get_args(RunKind)

# How run_summary folds episode statuses: an episode that ended normally is "completed".
COMPLETED_STATUSES = (EpisodeStatus.APPROVED, EpisodeStatus.EXHAUSTED, EpisodeStatus.NO_CHANGE)
FAILED_STATUSES = (EpisodeStatus.ERROR,)
IN_PROGRESS_STATUSES = (EpisodeStatus.RUNNING,)


class StoreError(Exception):
    """The store cannot do what was asked: unknown run, unreachable database, conflicting data."""


# --- what the store returns ----------------------------------------------------------------------


class RunInfo(BaseModel):
    run_id: str
    kind: RunKind
    repo: str
    status: str
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    finished_at: datetime | None = None


class RunSummary(BaseModel):
    run_id: str
    total_episodes: int = 0
    completed: int = 0  # approved, exhausted or no_change
    failed: int = 0  # error
    in_progress: int = 0  # running
    by_status: dict[str, int] = Field(default_factory=dict)
    total_tokens_used: int = 0
    total_changes_proposed: int = 0
    total_changes_accepted: int = 0
    total_actions: int = 0


class EpisodeSummary(BaseModel):
    """One line of a run's episode list, computed in SQL without loading the records."""

    run_id: str
    episode_id: str
    episode_number: int
    status: EpisodeStatus
    repo: str
    iterations: int
    best_reward: float | None
    tokens_used: int
    started_at: datetime
    finished_at: datetime | None


class StoredGuidance(GuidanceEntry):
    id: int
    repo: str
    run_id: str | None = None
    episode_id: str | None = None


class AuditEntry(BaseModel):
    id: int
    created_at: datetime
    actor: str
    action: str
    subject: str
    decision: str
    risk_score: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None


# --- engine and migrations -----------------------------------------------------------------------


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


def _alembic_config(**attributes: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes.update(attributes)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(engine: Engine, revision: str = "head", *, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the schema to `revision`, inside one transaction."""
    try:
        with engine.execution_options(aura_write=True).begin() as connection:
            config = _alembic_config(connection=connection)
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


# --- the store -----------------------------------------------------------------------------------


class Store:
    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self._engine = create_store_engine(self.url)
        self._write_engine = self._engine.execution_options(aura_write=True)
        # One writer at a time within the process: SQLite serialises writers anyway, and threads queueing
        # on this lock wait microseconds where SQLite's busy handler would sleep milliseconds.
        self._write_lock = threading.RLock()

    @classmethod
    def open(cls, url: str) -> Store:
        """Open the database, creating the SQLite file's directory, and migrate it to the latest schema."""
        parsed = normalize_url(url)
        if parsed.get_backend_name() == "sqlite" and not _is_sqlite_memory(parsed):
            directory = Path(parsed.database or "").expanduser().resolve().parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the database directory {directory}: {exc}") from exc
        store = cls(url)
        try:
            migrate(store._engine)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads (other store modules use these two, so SQLite locking stays right)."""
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

    # --- runs ------------------------------------------------------------------------------------

    def create_run(self, run_id: str, *, kind: str, repo: str, params: dict[str, Any] | None = None) -> None:
        """Record a run; calling it again with the same id changes nothing."""
        if not run_id:
            raise StoreError("a run needs a non-empty run_id")
        if kind not in RUN_KINDS:
            raise StoreError(f"unknown run kind {kind!r}: expected one of {', '.join(RUN_KINDS)}")
        values = {
            "run_id": run_id,
            "kind": kind,
            "repo": repo,
            "status": "running",
            "params": _json(params or {}),
            "created_at": utcnow(),
        }
        with self.write_session() as session:
            session.execute(self.insert(RunRow).values(values).on_conflict_do_nothing(index_elements=["run_id"]))

    def finish_run(self, run_id: str, status: str) -> None:
        if not status:
            raise StoreError("finish_run needs a status, e.g. 'completed' or 'failed'")
        with self.write_session() as session:
            result = session.execute(
                update(RunRow).where(RunRow.run_id == run_id).values(status=status, finished_at=utcnow())
            )
            if result.rowcount == 0:
                raise StoreError(f"unknown run {run_id!r}")

    def get_run(self, run_id: str) -> RunInfo | None:
        with self.read_session() as session:
            row = session.get(RunRow, run_id)
            return _run_info(row) if row else None

    def list_runs(self, *, repo: str | None = None, limit: int = 50) -> list[RunInfo]:
        """Newest first."""
        query = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.run_id.desc()).limit(limit)
        if repo is not None:
            query = query.where(RunRow.repo == repo)
        with self.read_session() as session:
            return [_run_info(row) for row in session.scalars(query)]

    # --- episodes and iterations -----------------------------------------------------------------

    def save_episode(self, episode: Episode) -> None:
        """Insert or update the episode. Iterations it carries that the store lacks are added; an
        iteration already stored is left as is (`save_iteration` replaces one), so saving after every
        iteration costs the same on the fiftieth as on the first."""
        metrics = episode.metrics
        data = episode.model_dump(
            mode="json",
            exclude={"iterations", "metrics", "run_id", "episode_id", "episode_number", "status", "started_at", "finished_at"},
        )
        with self.write_session() as session:
            run = session.get(RunRow, episode.run_id)
            if run is None:
                raise StoreError(f"unknown run {episode.run_id!r}: call create_run before saving its episodes")
            repo = episode.task.repo or run.repo
            values = {
                "run_id": episode.run_id,
                "episode_id": episode.episode_id,
                "episode_number": episode.episode_number,
                "repo": repo,
                "status": episode.status.value,
                "tokens_used": metrics.tokens_used,
                "inference_time_ms": metrics.inference_time_ms,
                "changes_proposed": metrics.changes_proposed,
                "changes_accepted": metrics.changes_accepted,
                "llm_calls": metrics.llm_calls,
                "error_count": metrics.error_count,
                "actions_count": len(episode.actions),
                "data": data,
                "started_at": episode.started_at,
                "finished_at": episode.finished_at,
                "updated_at": utcnow(),
            }
            try:
                self._upsert(session, EpisodeRow, values, ["run_id", "episode_id"])
                if episode.iterations:
                    stored = {
                        (number, candidate)
                        for number, candidate in session.execute(
                            select(IterationRow.number, IterationRow.candidate).where(
                                IterationRow.run_id == episode.run_id, IterationRow.episode_id == episode.episode_id
                            )
                        )
                    }
                    for record in episode.iterations:
                        if (record.number, record.candidate) not in stored:
                            self._upsert_iteration(session, record, repo)
            except IntegrityError as exc:
                raise StoreError(
                    f"cannot save episode {episode.episode_id!r} of run {episode.run_id!r}: episode number "
                    f"{episode.episode_number} may belong to another episode of this run ({exc.orig})"
                ) from exc

    def save_iteration(self, record: IterationRecord) -> None:
        """Insert or replace the record of (run, episode, iteration number, candidate)."""
        with self.write_session() as session:
            repo = session.scalar(
                select(EpisodeRow.repo).where(
                    EpisodeRow.run_id == record.run_id, EpisodeRow.episode_id == record.episode_id
                )
            )
            if repo is None:
                raise StoreError(
                    f"unknown episode {record.episode_id!r} of run {record.run_id!r}: "
                    "save the episode before its iterations"
                )
            self._upsert_iteration(session, record, repo)

    def _upsert_iteration(self, session: Session, record: IterationRecord, repo: str) -> None:
        values = {
            "run_id": record.run_id,
            "episode_id": record.episode_id,
            "number": record.number,
            "candidate": record.candidate,
            "repo": repo,
            "proposal_id": record.proposal_id,
            "status": record.status.value,
            "model": record.model,
            "reward": record.reward.value if record.reward else None,
            "verdict": record.reward.verdict.value if record.reward else None,
            "tokens_used": sum(c.prompt_tokens + c.completion_tokens for c in record.llm_calls),
            "data": record.model_dump(mode="json"),
            "started_at": record.started_at,
            "finished_at": record.finished_at,
        }
        self._upsert(session, IterationRow, values, ["run_id", "episode_id", "number", "candidate"])

    def get_episode(self, run_id: str, episode_id: str) -> Episode | None:
        with self.read_session() as session:
            row = session.get(EpisodeRow, (run_id, episode_id))
            if row is None:
                return None
            return self._load_episodes(session, [row])[0]

    def list_episodes(self, run_id: str) -> list[Episode]:
        """A run's episodes with their iterations, by episode number."""
        with self.read_session() as session:
            rows = session.scalars(
                select(EpisodeRow).where(EpisodeRow.run_id == run_id).order_by(EpisodeRow.episode_number)
            ).all()
            return self._load_episodes(session, list(rows))

    def _load_episodes(self, session: Session, rows: list[EpisodeRow]) -> list[Episode]:
        if not rows:
            return []
        by_key: dict[tuple[str, str], list[IterationRecord]] = {(r.run_id, r.episode_id): [] for r in rows}
        iteration_rows = session.scalars(
            select(IterationRow)
            .where(IterationRow.run_id.in_({r.run_id for r in rows}))
            .where(IterationRow.episode_id.in_({r.episode_id for r in rows}))
            .order_by(IterationRow.number, IterationRow.candidate)
        )
        for it in iteration_rows:
            if (it.run_id, it.episode_id) in by_key:
                by_key[(it.run_id, it.episode_id)].append(IterationRecord.model_validate(it.data))
        return [_episode(row, by_key[(row.run_id, row.episode_id)]) for row in rows]

    def list_episode_summaries(self, run_id: str) -> list[EpisodeSummary]:
        """Status, iteration count, best reward and tokens per episode of a run, by episode number."""
        stats = (
            select(
                IterationRow.episode_id,
                func.count(IterationRow.id).label("iterations"),
                func.max(IterationRow.reward).label("best_reward"),
            )
            .where(IterationRow.run_id == run_id)
            .group_by(IterationRow.episode_id)
            .subquery()
        )
        query = (
            select(
                EpisodeRow.run_id,
                EpisodeRow.episode_id,
                EpisodeRow.episode_number,
                EpisodeRow.status,
                EpisodeRow.repo,
                EpisodeRow.tokens_used,
                EpisodeRow.started_at,
                EpisodeRow.finished_at,
                func.coalesce(stats.c.iterations, 0).label("iterations"),
                stats.c.best_reward,
            )
            .outerjoin(stats, stats.c.episode_id == EpisodeRow.episode_id)
            .where(EpisodeRow.run_id == run_id)
            .order_by(EpisodeRow.episode_number)
        )
        with self.read_session() as session:
            return [EpisodeSummary.model_validate(row, from_attributes=True) for row in session.execute(query)]

    def list_iterations(
        self, *, repo: str | None = None, run_id: str | None = None, limit: int | None = None
    ) -> list[IterationRecord]:
        """Newest first; filtered by repository and/or run."""
        query = select(IterationRow.data).order_by(IterationRow.started_at.desc(), IterationRow.id.desc())
        if repo is not None:
            query = query.where(IterationRow.repo == repo)
        if run_id is not None:
            query = query.where(IterationRow.run_id == run_id)
        if limit is not None:
            query = query.limit(limit)
        with self.read_session() as session:
            return [IterationRecord.model_validate(data) for data in session.scalars(query)]

    def run_summary(self, run_id: str) -> RunSummary:
        query = (
            select(
                EpisodeRow.status,
                func.count(),
                func.coalesce(func.sum(EpisodeRow.tokens_used), 0),
                func.coalesce(func.sum(EpisodeRow.changes_proposed), 0),
                func.coalesce(func.sum(EpisodeRow.changes_accepted), 0),
                func.coalesce(func.sum(EpisodeRow.actions_count), 0),
            )
            .where(EpisodeRow.run_id == run_id)
            .group_by(EpisodeRow.status)
        )
        with self.read_session() as session:
            if session.get(RunRow, run_id) is None:
                raise StoreError(f"unknown run {run_id!r}")
            summary = RunSummary(run_id=run_id)
            for status, count, tokens, proposed, accepted, actions in session.execute(query):
                summary.by_status[status] = count
                summary.total_episodes += count
                summary.completed += count if status in COMPLETED_STATUSES else 0
                summary.failed += count if status in FAILED_STATUSES else 0
                summary.in_progress += count if status in IN_PROGRESS_STATUSES else 0
                summary.total_tokens_used += int(tokens)
                summary.total_changes_proposed += int(proposed)
                summary.total_changes_accepted += int(accepted)
                summary.total_actions += int(actions)
            return summary

    # --- guidance history ------------------------------------------------------------------------

    def add_guidance(
        self, repo: str, entry: GuidanceEntry, *, run_id: str | None = None, episode_id: str | None = None
    ) -> int:
        if not repo:
            raise StoreError("guidance needs the repository it is about")
        row = GuidanceRow(
            repo=repo,
            path=entry.path,
            source=entry.source,
            text=entry.text,
            line=entry.line,
            author=entry.author,
            iteration=entry.iteration,
            run_id=run_id,
            episode_id=episode_id,
            created_at=entry.created_at,
        )
        with self.write_session() as session:
            session.add(row)
            session.flush()
            return row.id

    def list_guidance(
        self, repo: str, *, path: str | None = None, episode_id: str | None = None, limit: int = 50
    ) -> list[StoredGuidance]:
        """Newest first; `path` and `episode_id` narrow the list when given."""
        query = (
            select(GuidanceRow)
            .where(GuidanceRow.repo == repo)
            .order_by(GuidanceRow.created_at.desc(), GuidanceRow.id.desc())
            .limit(limit)
        )
        if path is not None:
            query = query.where(GuidanceRow.path == path)
        if episode_id is not None:
            query = query.where(GuidanceRow.episode_id == episode_id)
        with self.read_session() as session:
            return [
                StoredGuidance(
                    id=row.id,
                    repo=row.repo,
                    run_id=row.run_id,
                    episode_id=row.episode_id,
                    source=row.source,  # type: ignore[arg-type]
                    text=row.text,
                    path=row.path,
                    line=row.line,
                    author=row.author,
                    iteration=row.iteration,
                    created_at=row.created_at,
                )
                for row in session.scalars(query)
            ]

    def forget_guidance(self, guidance_id: int) -> bool:
        """Delete one guidance entry; False when there was none with that id."""
        with self.write_session() as session:
            return session.execute(delete(GuidanceRow).where(GuidanceRow.id == guidance_id)).rowcount > 0

    # --- audit -----------------------------------------------------------------------------------

    def audit(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        decision: str,
        risk_score: float | None = None,
        details: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> int:
        row = AuditRow(
            created_at=utcnow(),
            actor=actor,
            action=action,
            subject=subject,
            decision=decision,
            risk_score=risk_score,
            details=_json(details or {}),
            run_id=run_id,
        )
        with self.write_session() as session:
            session.add(row)
            session.flush()
            return row.id

    def list_audit(self, *, run_id: str | None = None, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        query = select(AuditRow).order_by(AuditRow.created_at.desc(), AuditRow.id.desc()).limit(limit)
        if run_id is not None:
            query = query.where(AuditRow.run_id == run_id)
        if action is not None:
            query = query.where(AuditRow.action == action)
        with self.read_session() as session:
            return [
                AuditEntry(
                    id=row.id,
                    created_at=row.created_at,
                    actor=row.actor,
                    action=row.action,
                    subject=row.subject,
                    decision=row.decision,
                    risk_score=row.risk_score,
                    details=row.details,
                    run_id=row.run_id,
                )
                for row in session.scalars(query)
            ]


# --- conversions ---------------------------------------------------------------------------------


class _JSONDict(BaseModel):
    value: dict[str, Any]


def _json(value: dict[str, Any]) -> dict[str, Any]:
    """A caller's dict made JSON-safe the way pydantic would (datetimes, enums, paths, models)."""
    return _JSONDict(value=value).model_dump(mode="json")["value"]


def _run_info(row: RunRow) -> RunInfo:
    return RunInfo(
        run_id=row.run_id,
        kind=row.kind,  # type: ignore[arg-type]
        repo=row.repo,
        status=row.status,
        params=row.params,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def _episode(row: EpisodeRow, iterations: list[IterationRecord]) -> Episode:
    return Episode.model_validate(
        {
            **row.data,
            "run_id": row.run_id,
            "episode_id": row.episode_id,
            "episode_number": row.episode_number,
            "status": row.status,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
            "metrics": EpisodeMetrics(
                tokens_used=row.tokens_used,
                inference_time_ms=row.inference_time_ms,
                changes_proposed=row.changes_proposed,
                changes_accepted=row.changes_accepted,
                llm_calls=row.llm_calls,
                error_count=row.error_count,
            ),
            "iterations": iterations,
        }
    )


# --- export --------------------------------------------------------------------------------------

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def export_file_name(run_id: str, episode_number: int) -> str:
    """`{run_id}_ep{NNNN}.json`, the seed's naming; characters unsafe in a file name become `_`."""
    return f"{_UNSAFE_FILENAME.sub('_', run_id)}_ep{episode_number:04d}.json"


def export_episodes(store: Store, run_id: str, out_dir: Path) -> list[Path]:
    """Write each episode of a run, iterations included, as pretty-printed JSON; return the paths."""
    if store.get_run(run_id) is None:
        raise StoreError(f"unknown run {run_id!r}: `aura-sicd episodes list` shows the runs in the store")
    episodes = store.list_episodes(run_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for episode in episodes:
            path = out_dir / export_file_name(run_id, episode.episode_number)
            path.write_text(episode.model_dump_json(indent=2) + "\n", encoding="utf-8")
            paths.append(path)
    except OSError as exc:
        raise StoreError(f"cannot write the export to {out_dir}: {exc}") from exc
    return paths
