"""Runs, their episodes and the episodes' iterations: written as the cycle goes, read back whole or summed.

Records go in and come out as the pydantic models of `bot.records`, stored with `model_dump(mode="json")`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.records import Episode, EpisodeMetrics, EpisodeStatus, IterationRecord, utcnow
from bot.store.engine import Database, StoreError
from bot.store.models import RUN_KINDS, EpisodeSummary, RunInfo, RunSummary, json_safe
from bot.store.tables import EpisodeRow, IterationRow, RunRow

# How run_summary folds episode statuses: an episode that ended normally is "completed".
COMPLETED_STATUSES = (EpisodeStatus.APPROVED, EpisodeStatus.EXHAUSTED, EpisodeStatus.NO_CHANGE)
FAILED_STATUSES = (EpisodeStatus.ERROR,)
IN_PROGRESS_STATUSES = (EpisodeStatus.RUNNING,)


class RunQueries(Database):
    """The `Store`'s runs, episodes and iterations."""

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
            "params": json_safe(params or {}),
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
            return RunInfo.model_validate(row, from_attributes=True) if row else None

    def list_runs(self, *, repo: str | None = None, limit: int = 50) -> list[RunInfo]:
        """Newest first."""
        query = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.run_id.desc()).limit(limit)
        if repo is not None:
            query = query.where(RunRow.repo == repo)
        with self.read_session() as session:
            return [RunInfo.model_validate(row, from_attributes=True) for row in session.scalars(query)]

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
            repo = episode.context.repo or episode.task.repo or run.repo  # the loop's CycleRequest.repo_name
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
            "metrics": EpisodeMetrics.model_validate(row, from_attributes=True),  # the metric columns
            "iterations": iterations,
        }
    )
