"""Tables of the learning layer (migration 0003_learning), in the store's metadata.

Bandit state and guidance memory need no table of their own: they are read from `iterations`,
`guidance` and `human_feedback`. What does: the pattern library (approved changes, imported ones
included, with an optional embedding) and the per-repository opt-out from training data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.tables import Base, BigId


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
