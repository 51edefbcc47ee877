"""Retention and the per-repository opt-out from training data.

- `apply_retention(store, days)` deletes what is older than N days: runs (with their episodes and
  iterations), guidance entries and patterns. The audit trail is kept: it records decisions, not data.
- An opted-out repository's records never become training data (`export` skips them) nor patterns
  (`record_pattern` refuses them); opting out deletes its patterns at once, and retention deletes any
  that appear later (imported ones). Its guidance memory stays: it only ever serves that repository.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import delete, select

from bot.records import utcnow
from bot.store import Store, StoreError
from bot.store.tables import EpisodeRow, GuidanceRow, IterationRow, OptOutRow, PatternRow, RunRow


class RetentionResult(BaseModel):
    cutoff: datetime
    runs: int = 0
    episodes: int = 0
    iterations: int = 0
    guidance: int = 0
    patterns: int = 0
    opted_out_patterns: int = 0


class OptOut(BaseModel):
    repo: str
    reason: str | None = None
    created_at: datetime


def opt_out(store: Store, repo: str, *, reason: str | None = None, actor: str = "cli") -> int:
    """Exclude a repository from training data and patterns; returns the number of patterns deleted."""
    if not repo:
        raise StoreError("opt-out needs a repository name, e.g. owner/name")
    with store.engine.execution_options(aura_write=True).begin() as connection:
        exists = connection.scalar(select(OptOutRow.repo).where(OptOutRow.repo == repo))
        if exists is None:
            connection.execute(OptOutRow.__table__.insert().values(repo=repo, reason=reason, created_at=utcnow()))
        deleted = connection.execute(delete(PatternRow).where(PatternRow.repo == repo)).rowcount
    store.audit(actor=actor, action="learning.opt_out", subject=repo, decision="opted_out", details={"reason": reason})
    return deleted


def opt_in(store: Store, repo: str, *, actor: str = "cli") -> bool:
    """Undo an opt-out; False when the repository was not opted out."""
    with store.engine.execution_options(aura_write=True).begin() as connection:
        removed = connection.execute(delete(OptOutRow).where(OptOutRow.repo == repo)).rowcount
    store.audit(actor=actor, action="learning.opt_in", subject=repo, decision="opted_in" if removed else "not_opted_out")
    return bool(removed)


def opted_out(store: Store) -> list[OptOut]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(OptOutRow.repo, OptOutRow.reason, OptOutRow.created_at).order_by(OptOutRow.repo))
        return [OptOut(repo=r, reason=why, created_at=at) for r, why, at in rows]


def is_opted_out(store: Store, repo: str) -> bool:
    with store.engine.connect() as connection:
        return connection.scalar(select(OptOutRow.repo).where(OptOutRow.repo == repo)) is not None


def apply_retention(store: Store, days: int, *, now: datetime | None = None, actor: str = "cli") -> RetentionResult:
    """Delete runs, episodes, iterations, guidance and patterns older than `days` days, and the patterns
    of opted-out repositories. A run counts by its creation time and goes whole, episodes included."""
    if days < 1:
        raise StoreError(f"retention needs at least 1 day, got {days}")
    cutoff = (now or utcnow()) - timedelta(days=days)
    result = RetentionResult(cutoff=cutoff)
    with store.engine.execution_options(aura_write=True).begin() as connection:
        old_runs = select(RunRow.run_id).where(RunRow.created_at < cutoff).scalar_subquery()
        # explicit deletes (not only ON DELETE CASCADE) so the counts are right and iterations of
        # episodes saved without a run row go too
        result.iterations = connection.execute(delete(IterationRow).where(IterationRow.run_id.in_(old_runs))).rowcount
        result.episodes = connection.execute(delete(EpisodeRow).where(EpisodeRow.run_id.in_(old_runs))).rowcount
        result.runs = connection.execute(delete(RunRow).where(RunRow.created_at < cutoff)).rowcount
        result.guidance = connection.execute(delete(GuidanceRow).where(GuidanceRow.created_at < cutoff)).rowcount
        result.patterns = connection.execute(delete(PatternRow).where(PatternRow.created_at < cutoff)).rowcount
        result.opted_out_patterns = connection.execute(
            delete(PatternRow).where(PatternRow.repo.in_(select(OptOutRow.repo)))
        ).rowcount
    store.audit(
        actor=actor,
        action="learning.retention",
        subject=f"older than {days} days",
        decision="deleted",
        details=result.model_dump(mode="json"),
    )
    return result
