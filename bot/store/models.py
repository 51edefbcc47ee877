"""What the store's core tables hand back: runs, their summaries, stored guidance, audit entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from bot.records import EpisodeStatus, GuidanceEntry

RunKind = Literal["cli", "github", "training", "eval", "mcp", "scan"]
RUN_KINDS: tuple[str, ...] = get_args(RunKind)


class RunInfo(BaseModel):
    run_id: str
    kind: RunKind
    repo: str
    status: str
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    finished_at: datetime | None = None


class RunSummary(BaseModel):
    run_id: str
    total_episodes: int = 0
    completed: int = 0  # approved, exhausted or no_change
    failed: int = 0  # error
    in_progress: int = 0  # running
    by_status: dict[str, int] = Field(default_factory=dict)
    total_tokens_used: int = 0
    total_changes_proposed: int = 0
    total_changes_accepted: int = 0
    total_actions: int = 0


class EpisodeSummary(BaseModel):
    """One line of a run's episode list, computed in SQL without loading the records."""

    run_id: str
    episode_id: str
    episode_number: int
    status: EpisodeStatus
    repo: str
    iterations: int
    best_reward: float | None
    tokens_used: int
    started_at: datetime
    finished_at: datetime | None


class StoredGuidance(GuidanceEntry):
    id: int
    repo: str
    run_id: str | None = None
    episode_id: str | None = None


class AuditEntry(BaseModel):
    id: int
    created_at: datetime
    actor: str
    action: str
    subject: str
    decision: str
    risk_score: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None


class _JSONDict(BaseModel):
    value: dict[str, Any]


def json_safe(value: dict[str, Any]) -> dict[str, Any]:
    """A caller's dict made JSON-safe the way pydantic would (datetimes, enums, paths, models)."""
    return _JSONDict(value=value).model_dump(mode="json")["value"]
