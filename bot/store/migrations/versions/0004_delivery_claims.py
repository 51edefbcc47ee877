"""Delivery claims: admitters outside the receiving process take pending deliveries atomically.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

`claimed_by` names the admitter's batch holding the row; `available_at` is when another admitter may
take it (the claim's lease, or a failed admission's backoff); `attempts` counts the claims.
Written out in full (no imports from the application) so it keeps meaning what it means today.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ADD COLUMN (no table copy, also on SQLite): a quick first migration of a fresh database
    op.add_column("github_deliveries", sa.Column("claimed_by", sa.String(), nullable=True))
    op.add_column("github_deliveries", sa.Column("available_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("github_deliveries", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("github_deliveries") as batch:
        batch.drop_column("attempts")
        batch.drop_column("available_at")
        batch.drop_column("claimed_by")
