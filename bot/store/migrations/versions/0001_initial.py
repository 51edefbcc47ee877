"""Initial schema: runs, episodes, iterations, guidance, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written out in full (no imports from the application) so it keeps meaning what it means today.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("params", JSONDocument, nullable=False),
        timestamp("created_at"),
        timestamp("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_repo_created_at", "runs", ["repo", "created_at"])

    op.create_table(
        "episodes",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("episode_id", sa.String(), nullable=False),
        sa.Column("episode_number", sa.Integer(), nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("tokens_used", sa.Integer(), nullable=False),
        sa.Column("inference_time_ms", sa.Float(), nullable=False),
        sa.Column("changes_proposed", sa.Integer(), nullable=False),
        sa.Column("changes_accepted", sa.Integer(), nullable=False),
        sa.Column("llm_calls", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("actions_count", sa.Integer(), nullable=False),
        sa.Column("data", JSONDocument, nullable=False),
        timestamp("started_at"),
        timestamp("finished_at", nullable=True),
        timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_episodes_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "episode_id", name="pk_episodes"),
        sa.UniqueConstraint("run_id", "episode_number", name="uq_episodes_run_id_episode_number"),
    )
    op.create_index("ix_episodes_repo_started_at", "episodes", ["repo", "started_at"])

    op.create_table(
        "iterations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("episode_id", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("candidate", sa.Integer(), nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("proposal_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("reward", sa.Float(), nullable=True),
        sa.Column("verdict", sa.String(), nullable=True),
        sa.Column("tokens_used", sa.Integer(), nullable=False),
        sa.Column("data", JSONDocument, nullable=False),
        timestamp("started_at"),
        timestamp("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id", "episode_id"],
            ["episodes.run_id", "episodes.episode_id"],
            name="fk_iterations_run_id_episode_id_episodes",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_iterations"),
        sa.UniqueConstraint(
            "run_id", "episode_id", "number", "candidate", name="uq_iterations_run_id_episode_id_number_candidate"
        ),
    )
    op.create_index("ix_iterations_repo_started_at", "iterations", ["repo", "started_at"])

    op.create_table(
        "guidance",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(), nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("episode_id", sa.String(), nullable=True),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_guidance"),
    )
    op.create_index("ix_guidance_episode_id", "guidance", ["episode_id"])
    op.create_index("ix_guidance_repo_created_at", "guidance", ["repo", "created_at"])
    op.create_index("ix_guidance_repo_path_created_at", "guidance", ["repo", "path", "created_at"])

    op.create_table(
        "audit",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        timestamp("created_at"),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("risk_score", sa.Float(), nullable=True),
        sa.Column("details", JSONDocument, nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_action_created_at", "audit", ["action", "created_at"])
    op.create_index("ix_audit_created_at", "audit", ["created_at"])
    op.create_index("ix_audit_run_id_created_at", "audit", ["run_id", "created_at"])


def downgrade() -> None:
    # indexes go with their tables
    op.drop_table("audit")
    op.drop_table("guidance")
    op.drop_table("iterations")
    op.drop_table("episodes")
    op.drop_table("runs")
