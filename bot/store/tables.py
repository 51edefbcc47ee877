"""Every table of the database (SQLAlchemy 2 typed declarative models), in one metadata.

The core tables (runs, episodes, iterations, guidance, audit; migration 0001), the GitHub App's
(deliveries, installations, bot pull requests, human feedback; 0002 and 0004) and the learning layer's
(patterns, opt-outs; 0003). Columns hold what is queried or summed (status, repo, metrics, reward,
timestamps); the rest of a record is JSON. Every change here needs a migration in
`migrations/versions/` (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out. SQLite stores no offset, so it is restored on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # naive values are taken as UTC, like everything the bot writes
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
        str: String(),
    }


class RunRow(Base):
    """One invocation: a CLI run, a GitHub job, a training or eval batch."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str]  # cli | github | training | eval | mcp | scan
    repo: Mapped[str]
    status: Mapped[str] = mapped_column(default="running")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_runs_repo_created_at", "repo", "created_at"),
        Index("ix_runs_created_at", "created_at"),
    )


class EpisodeRow(Base):
    """One task worked to approval or exhaustion. Its iterations live in `iterations`."""

    __tablename__ = "episodes"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True)
    episode_id: Mapped[str] = mapped_column(primary_key=True)
    episode_number: Mapped[int]
    repo: Mapped[str]
    status: Mapped[str]
    # EpisodeMetrics, as columns so summaries are sums
    tokens_used: Mapped[int] = mapped_column(default=0)
    inference_time_ms: Mapped[float] = mapped_column(Float, default=0.0)
    changes_proposed: Mapped[int] = mapped_column(default=0)
    changes_accepted: Mapped[int] = mapped_column(default=0)
    llm_calls: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    actions_count: Mapped[int] = mapped_column(default=0)
    # task, context, actions, outcomes, metadata
    data: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("run_id", "episode_number"),
        Index("ix_episodes_repo_started_at", "repo", "started_at"),
    )


class IterationRow(Base):
    """One IterationRecord (one candidate of one iteration), whole, as JSON in `data`."""

    __tablename__ = "iterations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str]
    episode_id: Mapped[str]
    number: Mapped[int]
    candidate: Mapped[int] = mapped_column(default=0)
    repo: Mapped[str]
    proposal_id: Mapped[str]
    status: Mapped[str]
    model: Mapped[str | None]
    reward: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[str | None]
    tokens_used: Mapped[int] = mapped_column(default=0)
    data: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "episode_id"], ["episodes.run_id", "episodes.episode_id"], ondelete="CASCADE"
        ),
        UniqueConstraint("run_id", "episode_id", "number", "candidate"),
        Index("ix_iterations_repo_started_at", "repo", "started_at"),
    )


class GuidanceRow(Base):
    """Guidance history per repository and path: agitator advice, review comments, policy notes."""

    __tablename__ = "guidance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    repo: Mapped[str]
    path: Mapped[str | None]
    source: Mapped[str]
    text: Mapped[str] = mapped_column(Text)
    line: Mapped[int | None]
    author: Mapped[str | None]
    iteration: Mapped[int | None]
    run_id: Mapped[str | None]  # no foreign key: guidance outlives the run it came from
    episode_id: Mapped[str | None]
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_guidance_repo_path_created_at", "repo", "path", "created_at"),
        Index("ix_guidance_repo_created_at", "repo", "created_at"),
        Index("ix_guidance_episode_id", "episode_id"),
    )


class AuditRow(Base):
    """Every decision: policy verdicts, approvals, publishing, admin actions."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    actor: Mapped[str]
    action: Mapped[str]
    subject: Mapped[str] = mapped_column(Text)
    decision: Mapped[str]
    risk_score: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[str | None]  # no foreign key: decisions are kept even when taken outside a run

    __table_args__ = (
        Index("ix_audit_run_id_created_at", "run_id", "created_at"),
        Index("ix_audit_action_created_at", "action", "created_at"),
        Index("ix_audit_created_at", "created_at"),
    )


# --- the GitHub App (migrations 0002 and 0004) -----------------------------------------------------


class DeliveryRow(Base):
    """One row per X-GitHub-Delivery: the primary key is what makes a redelivery a no-op."""

    __tablename__ = "github_deliveries"

    delivery_id: Mapped[str] = mapped_column(primary_key=True)
    event: Mapped[str]
    action: Mapped[str | None]
    repo: Mapped[str | None]
    installation_id: Mapped[int | None] = mapped_column(BigId)
    sender: Mapped[str | None]
    status: Mapped[str]
    detail: Mapped[str | None] = mapped_column(Text)
    job: Mapped[dict[str, Any] | None]  # the JobRequest while it waits for admission
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Admission claims (migration 0004): who holds the row, until when nobody else may take it (the
    # claim's lease, or a failed admission's backoff), and how often it was taken.
    claimed_by: Mapped[str | None]
    available_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(server_default="0")

    __table_args__ = (
        Index("ix_github_deliveries_status_received_at", "status", "received_at"),
        Index("ix_github_deliveries_repo_received_at", "repo", "received_at"),
    )


class InstallationRow(Base):
    __tablename__ = "github_installations"

    installation_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    account: Mapped[str | None]
    app_id: Mapped[int | None] = mapped_column(BigId)
    repository_selection: Mapped[str | None]
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class InstallationRepositoryRow(Base):
    __tablename__ = "github_installation_repositories"

    installation_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    repo: Mapped[str] = mapped_column(String, primary_key=True)

    __table_args__ = (Index("ix_github_installation_repositories_repo", "repo"),)


class BotPullRequestRow(Base):
    __tablename__ = "bot_pull_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    repo: Mapped[str]
    number: Mapped[int]
    branch: Mapped[str]
    base_ref: Mapped[str | None]
    proposal_id: Mapped[str | None]
    run_id: Mapped[str | None]
    issue_number: Mapped[int | None]  # the issue (or foreign PR) it came from
    state: Mapped[str]
    html_url: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("repo", "number"),
        Index("ix_bot_pull_requests_repo_branch", "repo", "branch"),
    )


class HumanFeedbackRow(Base):
    __tablename__ = "human_feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(unique=True)
    repo: Mapped[str]
    number: Mapped[int]
    branch: Mapped[str | None]
    proposal_id: Mapped[str | None]
    run_id: Mapped[str | None]
    merged: Mapped[bool] = mapped_column(Boolean)
    actor: Mapped[str | None]
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_human_feedback_repo_created_at", "repo", "created_at"),)


# --- the learning layer (migration 0003) -----------------------------------------------------------
# Bandit state and guidance memory need no table of their own: they are read from `iterations`,
# `guidance` and `human_feedback`.


class PatternRow(Base):
    """One approved proposal: the task, its diff, its reward; the generator sees similar ones as examples."""

    __tablename__ = "learning_patterns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    repo: Mapped[str]
    task_title: Mapped[str] = mapped_column(Text)
    task_body: Mapped[str] = mapped_column(Text)
    files: Mapped[dict[str, Any]]  # {"paths": [...]}: the files the diff touches
    summary: Mapped[str] = mapped_column(Text)
    diff: Mapped[str] = mapped_column(Text)
    reward: Mapped[float] = mapped_column(Float)
    run_id: Mapped[str | None]
    episode_id: Mapped[str | None]
    embedding_model: Mapped[str | None]
    embedding: Mapped[dict[str, Any] | None]  # {"vector": [...]} of the task text
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_learning_patterns_repo_created_at", "repo", "created_at"),
        Index("ix_learning_patterns_episode", "run_id", "episode_id", unique=True),
    )


class OptOutRow(Base):
    """A repository whose records never become training data or patterns."""

    __tablename__ = "learning_opt_outs"

    repo: Mapped[str] = mapped_column(primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
