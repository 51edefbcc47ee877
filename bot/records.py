"""Pydantic data at every boundary of the cycle.

The three model outputs (`Proposal`, `Rubric`, `AgitatorGuidance`) are public contracts, documented in
docs/contracts.md: any model server that returns these shapes can drive the cycle.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from bot.verdict_records import Comparison, Judgment, TestImpact
from sandbox.reports import CheckReport


def utcnow() -> datetime:
    return datetime.now(UTC)


def proposal_id_for(*parts: str) -> str:
    """12 hex characters of SHA-256 over the parts (run id, task, ...): the branch is aura-sicd/<id>."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


# --- input ---------------------------------------------------------------------------------------


class Task(BaseModel):
    title: str
    body: str = ""
    files: list[str] = Field(default_factory=list)  # paths the task names explicitly
    source: str = "cli"  # e.g. "github:owner/repo#12"
    repo: str = ""  # "owner/name", or the local path's name

    @property
    def text(self) -> str:
        return f"{self.title}\n\n{self.body}".strip()


# --- model outputs (public contracts) ------------------------------------------------------------


class ChangeType(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Edit(BaseModel):
    search: str
    replace: str


class Change(BaseModel):
    file_path: str
    change_type: ChangeType
    edits: list[Edit] = Field(default_factory=list)
    new_content: str | None = None
    rationale: str = ""

    @model_validator(mode="after")
    def _shape_matches_type(self) -> Change:
        if self.change_type is ChangeType.UPDATE and not self.edits:
            raise ValueError(f"{self.file_path}: an update needs at least one edit")
        if self.change_type is ChangeType.UPDATE and self.new_content is not None:
            raise ValueError(f"{self.file_path}: an update carries edits, not new_content")
        if self.change_type is ChangeType.CREATE and (self.new_content is None or self.edits):
            raise ValueError(f"{self.file_path}: a create carries new_content and no edits")
        if self.change_type is ChangeType.DELETE and (self.edits or self.new_content is not None):
            raise ValueError(f"{self.file_path}: a delete carries neither edits nor new_content")
        return self


class Proposal(BaseModel):
    """The generator's reply."""

    summary: str
    changes: list[Change] = Field(default_factory=list)  # empty: the model finds no change is needed


class Rubric(BaseModel):
    """The discriminator's reply: each score in [0, 1]."""

    coverage: float = Field(ge=0.0, le=1.0)
    accuracy: float = Field(ge=0.0, le=1.0)
    coherence: float = Field(ge=0.0, le=1.0)
    formatting: float = Field(ge=0.0, le=1.0)
    issues: list[str] = Field(default_factory=list)
    comments: list[str] = Field(default_factory=list)


class AgitatorGuidance(BaseModel):
    """The agitator's reply: what the next attempt should do differently."""

    guidance: str
    focus_points: list[str] = Field(default_factory=list)
    improvement_plan: list[str] = Field(default_factory=list)


# --- what the bot computes -----------------------------------------------------------------------


class LLMCall(BaseModel):
    role: str
    model: str
    provider: str = "ollama"  # the API that served it: ollama | openai
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted_by_server: bool = True  # false: the server reported no counts, these are estimates
    cached_tokens: int | None = None  # prompt tokens the server reused from its cache, where it says
    duration_ms: float = 0.0  # the server's total duration where it reports one, else wall time
    prompt_ms: float | None = None  # prompt processing, where the server reports it
    generation_ms: float | None = None  # token generation, where the server reports it
    finish_reason: str | None = None  # "length": the reply was cut off at the token limit
    attempts: int = 1  # HTTP attempts, retries included
    repaired: bool = False  # a repair request was needed
    ok: bool = True
    error: str | None = None


class PolicyDecision(BaseModel):
    allowed: bool
    violations: list[str] = Field(default_factory=list)
    risk_score: float = Field(0.0, ge=0.0, le=1.0)
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0


class Verdict(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class Reward(BaseModel):
    value: float = Field(ge=0.0, le=1.0)
    pass_rate: float = Field(ge=0.0, le=1.0)
    rubric_score: float | None = None
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)  # why not approved (or why approved)
    dodges: list[str] = Field(default_factory=list)  # how the change weakens its tests: refused, value 0
    changed_expectations: list[str] = Field(default_factory=list)  # existing tests whose assertions it changes


GuidanceSource = Literal["agitator", "human", "review", "policy", "edit_error", "memory", "baseline"]


class GuidanceEntry(BaseModel):
    source: GuidanceSource
    text: str
    path: str | None = None  # a file the guidance is about (review line comments)
    line: int | None = None
    author: str | None = None
    iteration: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class IterationStatus(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"  # ran, but not good enough
    FAILED = "failed"  # could not be evaluated: invalid model output, edits that do not apply, policy
    NO_CHANGE = "no_change"  # the generator says nothing needs to change


class IterationRecord(BaseModel):
    run_id: str
    episode_id: str
    number: int  # 1-based
    candidate: int = 0  # index within an ensemble draw
    proposal_id: str
    status: IterationStatus
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    model: str | None = None
    temperature: float | None = None
    edit_format: str | None = None  # how the generator wrote its changes (bot/edit_formats/)
    guidance_in: list[GuidanceEntry] = Field(default_factory=list)  # what the generator was told
    proposal: Proposal | None = None
    policy: PolicyDecision | None = None
    apply_error: str | None = None
    diff: str = ""
    check_report: CheckReport | None = None
    comparison: Comparison | None = None
    judgment: Judgment | None = None  # the attempt's tests judged (bot/cycle/judging.py)
    test_impact: TestImpact | None = None  # which tests ran first and why, and what the check cost (gate.py)
    rubric: Rubric | None = None
    reward: Reward | None = None
    guidance_out: AgitatorGuidance | None = None
    llm_calls: list[LLMCall] = Field(default_factory=list)
    error: str | None = None
    harness_ms: float = 0.0  # time spent in our own code (not models, not sandbox)
    # the generator's chat messages for this attempt, kept as training data (bot/learning/export.py)
    generator_messages: list[dict[str, str]] = Field(default_factory=list)


class EpisodeStatus(StrEnum):
    RUNNING = "running"
    APPROVED = "approved"
    EXHAUSTED = "exhausted"
    NO_CHANGE = "no_change"
    ERROR = "error"


class EpisodeMetrics(BaseModel):
    tokens_used: int = 0
    inference_time_ms: float = 0.0
    changes_proposed: int = 0
    changes_accepted: int = 0
    llm_calls: int = 0
    error_count: int = 0


class Candidate(BaseModel):
    """One generator draw of an iteration: which model, at which temperature."""

    model: str
    temperature: float


class BaselineSummary(BaseModel):
    """What the checks said on the unmodified base (bot/cycle/baseline.py has the whole of it)."""

    failing_tests: list[str] = Field(default_factory=list)
    red_checks: list[str] = Field(default_factory=list)
    tests_run: int = 0


class EpisodeContext(BaseModel):
    """Where and how an episode ran: set once before its first attempt."""

    repo: str = ""
    base_sha: str = ""
    branch: str = ""
    proposal_id: str = ""
    max_iterations: int = 0
    candidates: list[Candidate] = Field(default_factory=list)
    dry_run: bool = False
    baseline: BaselineSummary | None = None


class EpisodeOutcome(BaseModel):
    """What an episode came to: the attempt chosen, its commit, or why there is none.

    Episodes stored before these fields were typed (a dict with the same keys, and `branch` and
    `proposal_id`, which the context holds) load as they are: unknown keys are ignored, a null text is ""."""

    best_iteration: int | None = None  # with best_candidate: the chosen attempt (Episode.chosen_iteration)
    best_candidate: int = 0
    best_reward: float | None = None
    best_diff: str = ""
    commit: str | None = None  # the commit on the episode's branch (None in a dry run or when nothing was kept)
    draft: bool = False  # the commit is the best of attempts that ran out, for a draft PR
    summary: str = ""  # the generator's word when it proposed no change
    evidence: str = ""  # with a change not needed: what the checks on the base showed
    error: str | None = None  # the model server failed mid-episode

    @field_validator("best_diff", "summary", "evidence", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class Episode(BaseModel):
    """The seed's TrainingEpisode: one task worked to approval or exhaustion."""

    run_id: str
    episode_id: str
    episode_number: int = 1
    status: EpisodeStatus = EpisodeStatus.RUNNING
    task: Task
    context: EpisodeContext = Field(default_factory=EpisodeContext)
    actions: list[dict[str, Any]] = Field(default_factory=list)  # one entry per step taken
    outcomes: EpisodeOutcome = Field(default_factory=EpisodeOutcome)
    metrics: EpisodeMetrics = Field(default_factory=EpisodeMetrics)
    metadata: dict[str, Any] = Field(default_factory=dict)
    iterations: list[IterationRecord] = Field(default_factory=list)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    def chosen_iteration(self) -> IterationRecord | None:
        """The attempt the episode's outcome names (the approved one, or the best of those that ran out)."""
        if self.outcomes.best_iteration is None:
            return None
        return next((r for r in self.iterations
                     if r.number == self.outcomes.best_iteration and r.candidate == self.outcomes.best_candidate), None)
