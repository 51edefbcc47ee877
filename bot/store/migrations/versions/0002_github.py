"""GitHub: webhook deliveries, installations, the bot's pull requests, human feedback.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Written out in full (no imports from the application) so it keeps meaning what it means today.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "github_deliveries",
        sa.Column("delivery_id", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=True),
        sa.Column("repo", sa.String(), nullable=True),
        sa.Column("installation_id", BigId, nullable=True),
        sa.Column("sender", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("job", JSONDocument, nullable=True),
        timestamp("received_at"),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_github_deliveries"),
    )
    op.create_index("ix_github_deliveries_status_received_at", "github_deliveries", ["status", "received_at"])
    op.create_index("ix_github_deliveries_repo_received_at", "github_deliveries", ["repo", "received_at"])

    op.create_table(
        "github_installations",
        sa.Column("installation_id", BigId, autoincrement=False, nullable=False),
        sa.Column("account", sa.String(), nullable=True),
        sa.Column("app_id", BigId, nullable=True),
        sa.Column("repository_selection", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        timestamp("created_at"),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("installation_id", name="pk_github_installations"),
    )

    op.create_table(
        "github_installation_repositories",
        sa.Column("installation_id", BigId, autoincrement=False, nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("installation_id", "repo", name="pk_github_installation_repositories"),
    )
    op.create_index("ix_github_installation_repositories_repo", "github_installation_repositories", ["repo"])

    op.create_table(
        "bot_pull_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(), nullable=False),
        sa.Column("base_ref", sa.String(), nullable=True),
        sa.Column("proposal_id", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("issue_number", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("html_url", sa.String(), nullable=True),
        timestamp("created_at"),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_bot_pull_requests"),
        sa.UniqueConstraint("repo", "number", name="uq_bot_pull_requests_repo_number"),
    )
    op.create_index("ix_bot_pull_requests_repo_branch", "bot_pull_requests", ["repo", "branch"])

    op.create_table(
        "human_feedback",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(), nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(), nullable=True),
        sa.Column("proposal_id", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("merged", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(), nullable=True),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_human_feedback"),
        sa.UniqueConstraint("delivery_id", name="uq_human_feedback_delivery_id"),
    )
    op.create_index("ix_human_feedback_repo_created_at", "human_feedback", ["repo", "created_at"])


def downgrade() -> None:
    op.drop_table("human_feedback")
    op.drop_table("bot_pull_requests")
    op.drop_table("github_installation_repositories")
    op.drop_table("github_installations")
    op.drop_table("github_deliveries")
