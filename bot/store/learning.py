"""The learning layer's queries: the pattern library, opt-outs, retention, and what guidance memory and
the challenge list read from episodes, iterations and human feedback.

The rules (which guidance is a lesson, how patterns are ranked, what retention keeps) live in
`bot/learning/`; this module only reads and writes rows.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, func, select, update

from bot.records import EpisodeStatus, Task, utcnow
from bot.store.engine import Database
from bot.store.tables import (
    EpisodeRow,
    GuidanceRow,
    HumanFeedbackRow,
    IterationRow,
    OptOutRow,
    PatternRow,
    RunRow,
)

# --- what goes in and out ------------------------------------------------------------------------


class PatternRecord(BaseModel):
    """One pattern, as exported and imported (JSONL)."""

    repo: str
    task_title: str
    task_body: str = ""
    files: list[str] = Field(default_factory=list)
    summary: str = ""
    diff: str
    reward: float = Field(ge=0.0, le=1.0)
    created_at: datetime = Field(default_factory=utcnow)


class Pattern(PatternRecord):
    id: int
    run_id: str | None = None
    episode_id: str | None = None

    @field_validator("files", mode="before")
    @classmethod
    def _stored_paths(cls, value: Any) -> Any:
        """The table keeps the paths as {"paths": [...]}."""
        return value.get("paths", []) if isinstance(value, dict) else value


class OptOut(BaseModel):
    repo: str
    reason: str | None = None
    created_at: datetime


class RetentionResult(BaseModel):
    cutoff: datetime
    runs: int = 0
    episodes: int = 0
    iterations: int = 0
    guidance: int = 0
    patterns: int = 0
    opted_out_patterns: int = 0


class EpisodeAttempts(BaseModel):
    """One episode's task and outcome, with its number of attempts and their best reward."""

    repo: str
    run_id: str
    status: EpisodeStatus
    task: Task
    iterations: int
    best_reward: float | None


# --- the queries ---------------------------------------------------------------------------------


class LearningQueries(Database):
    """The `Store`'s learning tables, and the learning layer's reads of the others."""

    # --- patterns --------------------------------------------------------------------------------

    def save_pattern(self, record: PatternRecord, *, run_id: str | None = None, episode_id: str | None = None) -> int:
        """Insert a pattern and return its id; an episode's pattern is kept once (its id comes back)."""
        values = {
            **record.model_dump(exclude={"files"}), "files": {"paths": record.files},
            "run_id": run_id, "episode_id": episode_id, "embedding_model": None, "embedding": None,
        }
        with self.write_session() as session:
            if run_id and episode_id:
                existing = session.scalar(
                    select(PatternRow.id).where(PatternRow.run_id == run_id, PatternRow.episode_id == episode_id)
                )
                if existing is not None:
                    return existing
            return session.execute(self.insert(PatternRow).values(values)).inserted_primary_key[0]

    def list_patterns(self, *, repo: str | None = None, limit: int | None = None) -> list[Pattern]:
        """Newest first."""
        query = select(PatternRow).order_by(PatternRow.created_at.desc(), PatternRow.id.desc())
        if repo is not None:
            query = query.where(PatternRow.repo == repo)
        if limit is not None:
            query = query.limit(limit)
        with self.read_session() as session:
            return [Pattern.model_validate(row, from_attributes=True) for row in session.scalars(query)]

    def pattern_embeddings(self, pattern_ids: Collection[int], model: str) -> dict[int, list[float]]:
        """The task-text embeddings by `model` the given patterns already have, by pattern id."""
        query = select(PatternRow.id, PatternRow.embedding).where(
            PatternRow.id.in_(pattern_ids), PatternRow.embedding_model == model
        )
        with self.read_session() as session:
            return {pattern_id: embedding["vector"] for pattern_id, embedding in session.execute(query) if embedding}

    def save_pattern_embeddings(self, model: str, vectors: dict[int, list[float]]) -> None:
        with self.write_session() as session:
            for pattern_id, vector in vectors.items():
                session.execute(
                    update(PatternRow).where(PatternRow.id == pattern_id)
                    .values(embedding={"vector": vector}, embedding_model=model)
                )

    # --- opt-outs --------------------------------------------------------------------------------

    def add_opt_out(self, repo: str, *, reason: str | None = None) -> int:
        """Record the opt-out (once) and delete the repository's patterns; returns how many went."""
        with self.write_session() as session:
            if session.get(OptOutRow, repo) is None:
                session.add(OptOutRow(repo=repo, reason=reason, created_at=utcnow()))
            return session.execute(delete(PatternRow).where(PatternRow.repo == repo)).rowcount

    def remove_opt_out(self, repo: str) -> bool:
        with self.write_session() as session:
            return session.execute(delete(OptOutRow).where(OptOutRow.repo == repo)).rowcount > 0

    def list_opt_outs(self) -> list[OptOut]:
        with self.read_session() as session:
            rows = session.scalars(select(OptOutRow).order_by(OptOutRow.repo))
            return [OptOut.model_validate(row, from_attributes=True) for row in rows]

    def is_opted_out(self, repo: str) -> bool:
        with self.read_session() as session:
            return session.get(OptOutRow, repo) is not None

    # --- retention -------------------------------------------------------------------------------

    def delete_before(self, cutoff: datetime) -> RetentionResult:
        """Delete runs (by creation time, with their episodes and iterations), guidance and patterns
        older than `cutoff`, and every pattern of an opted-out repository; returns the counts."""
        result = RetentionResult(cutoff=cutoff)
        with self.write_session() as session:
            old_runs = select(RunRow.run_id).where(RunRow.created_at < cutoff).scalar_subquery()
            # explicit deletes (not only ON DELETE CASCADE) so the counts are right and iterations of
            # episodes saved without a run row go too
            result.iterations = session.execute(delete(IterationRow).where(IterationRow.run_id.in_(old_runs))).rowcount
            result.episodes = session.execute(delete(EpisodeRow).where(EpisodeRow.run_id.in_(old_runs))).rowcount
            result.runs = session.execute(delete(RunRow).where(RunRow.created_at < cutoff)).rowcount
            result.guidance = session.execute(delete(GuidanceRow).where(GuidanceRow.created_at < cutoff)).rowcount
            result.patterns = session.execute(delete(PatternRow).where(PatternRow.created_at < cutoff)).rowcount
            result.opted_out_patterns = session.execute(
                delete(PatternRow).where(PatternRow.repo.in_(select(OptOutRow.repo)))
            ).rowcount
        return result

    # --- reads for guidance memory and the challenge list ----------------------------------------

    def approved_episodes(self, episode_ids: Collection[str]) -> set[tuple[str, str]]:
        """(run_id, episode_id) of those of the given episodes that were approved."""
        query = select(EpisodeRow.run_id, EpisodeRow.episode_id).where(
            EpisodeRow.episode_id.in_(episode_ids), EpisodeRow.status == EpisodeStatus.APPROVED.value
        )
        with self.read_session() as session:
            return {(run_id, episode_id) for run_id, episode_id in session.execute(query)}

    def closed_unmerged_runs(self, repo: str) -> set[str]:
        """The runs whose pull request on `repo` a person closed without merging."""
        query = select(HumanFeedbackRow.run_id).where(
            HumanFeedbackRow.repo == repo, HumanFeedbackRow.merged.is_(False), HumanFeedbackRow.run_id.is_not(None)
        )
        with self.read_session() as session:
            return set(session.scalars(query))

    def episode_attempts(self, *, repo: str | None = None) -> list[EpisodeAttempts]:
        """Every episode with at least one iteration, oldest first, with its attempt count and best reward."""
        stats = (
            select(IterationRow.run_id, IterationRow.episode_id, func.count(IterationRow.id).label("iterations"),
                   func.max(IterationRow.reward).label("best_reward"))
            .group_by(IterationRow.run_id, IterationRow.episode_id)
            .subquery()
        )
        query = (
            select(EpisodeRow.repo, EpisodeRow.run_id, EpisodeRow.status, EpisodeRow.data["task"].label("task"),
                   stats.c.iterations, stats.c.best_reward)
            .join(stats, (stats.c.run_id == EpisodeRow.run_id) & (stats.c.episode_id == EpisodeRow.episode_id))
            .order_by(EpisodeRow.started_at)
        )
        if repo is not None:
            query = query.where(EpisodeRow.repo == repo)
        with self.read_session() as session:
            return [EpisodeAttempts.model_validate(row, from_attributes=True) for row in session.execute(query)]
