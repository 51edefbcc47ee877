"""Retention and the per-repository opt-out from training data.

- `apply_retention(store, days)` deletes what is older than N days: runs (with their episodes and
  iterations), guidance entries and patterns. The audit trail is kept: it records decisions, not data.
- An opted-out repository's records never become training data (`export` skips them) nor patterns
  (`record_pattern` refuses them); opting out deletes its patterns at once, and retention deletes any
  that appear later (imported ones). Its guidance memory stays: it only ever serves that repository.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.records import utcnow
from bot.store import Store, StoreError
from bot.store.learning import OptOut, RetentionResult

__all__ = ["OptOut", "RetentionResult", "apply_retention", "opt_in", "opt_out"]


def opt_out(store: Store, repo: str, *, reason: str | None = None, actor: str = "cli") -> int:
    """Exclude a repository from training data and patterns; returns the number of patterns deleted."""
    if not repo:
        raise StoreError("opt-out needs a repository name, e.g. owner/name")
    deleted = store.add_opt_out(repo, reason=reason)
    store.audit(actor=actor, action="learning.opt_out", subject=repo, decision="opted_out", details={"reason": reason})
    return deleted


def opt_in(store: Store, repo: str, *, actor: str = "cli") -> bool:
    """Undo an opt-out; False when the repository was not opted out."""
    removed = store.remove_opt_out(repo)
    store.audit(actor=actor, action="learning.opt_in", subject=repo, decision="opted_in" if removed else "not_opted_out")
    return removed


def apply_retention(store: Store, days: int, *, now: datetime | None = None, actor: str = "cli") -> RetentionResult:
    """Delete runs, episodes, iterations, guidance and patterns older than `days` days, and the patterns
    of opted-out repositories. A run counts by its creation time and goes whole, episodes included."""
    if days < 1:
        raise StoreError(f"retention needs at least 1 day, got {days}")
    result = store.delete_before((now or utcnow()) - timedelta(days=days))
    store.audit(
        actor=actor,
        action="learning.retention",
        subject=f"older than {days} days",
        decision="deleted",
        details=result.model_dump(mode="json"),
    )
    return result
