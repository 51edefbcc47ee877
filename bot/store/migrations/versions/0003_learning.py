"""Learning: the pattern library and the per-repository opt-out from training data.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Written out in full (no imports from the application) so it keeps meaning what it means today.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "learning_patterns",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("task_title", sa.Text(), nullable=False),
        sa.Column("task_body", sa.Text(), nullable=False),
        sa.Column("files", JSONDocument, nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("reward", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("episode_id", sa.String(), nullable=True),
        sa.Column("embedding_model", sa.String(), nullable=True),
        sa.Column("embedding", JSONDocument, nullable=True),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_learning_patterns"),
    )
    op.create_index("ix_learning_patterns_repo_created_at", "learning_patterns", ["repo", "created_at"])
    op.create_index("ix_learning_patterns_episode", "learning_patterns", ["run_id", "episode_id"], unique=True)

    op.create_table(
        "learning_opt_outs",
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("repo", name="pk_learning_opt_outs"),
    )


def downgrade() -> None:
    op.drop_table("learning_opt_outs")
    op.drop_table("learning_patterns")
