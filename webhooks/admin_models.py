"""The admin API's request and response models (they validate the requests and make the OpenAPI schema),
and the constants they share with the endpoints in webhooks/admin.py."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.github.messages import pr_body
from bot.records import Change, ChangeType, PolicyDecision, Proposal, Task, proposal_id_for
from bot.store import RunSummary, StoredGuidance

ACTOR = "admin-api"
REPO_PART = r"[A-Za-z0-9_.-]{1,100}"
LOCAL_NAME = r"[^/\x00-\x1f\x7f]{1,255}"  # a local repository's folder name
RUN_ID = r"^[A-Za-z0-9_.-]{1,64}$"
# A training run's risk, written to the audit trail: a dry run only runs models and sandboxed checks; a
# real one also keeps a commit per approved episode on local aura-sicd/* branches (nothing is pushed).
TRAINING_RISK = {"dry_run": 0.1, "commit": 0.3}
MEMORY_FORGET_RISK = 0.1  # deleting one piece of advice; it can be given again


class AdminRefused(Exception):
    def __init__(self, status_code: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code, self.detail, self.extra = status_code, detail, extra


# --- request and response models -----------------------------------------------------------------


class TrainingStart(BaseModel):
    """Run the cycle over a dataset for several epochs. The dataset is one task per file in `files`
    (the description applied to that file), or the description alone; `episodes` counts every episode,
    so it must be a multiple of the number of tasks: epochs = episodes / tasks."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(None, pattern=RUN_ID)
    episodes: int = Field(1, ge=1, le=1000)
    dry_run: bool = True
    task_description: str = Field(min_length=1, max_length=20_000)
    repo: str | None = Field(None, pattern=rf"^{REPO_PART}/{REPO_PART}$", description="owner/name of an installed repository")
    path: str | None = Field(None, min_length=1, description="a git repository on this server")
    files: list[str] = Field(default_factory=list, max_length=200)
    max_iterations: int | None = Field(None, ge=1, le=50)

    @model_validator(mode="after")
    def _check(self) -> TrainingStart:
        if (self.repo is None) == (self.path is None):
            raise ValueError("give exactly one of `repo` (owner/name of an installed repository) or `path` (a local git repository)")
        if not self.task_description.strip():
            raise ValueError("`task_description` is empty")
        tasks = len(self.dataset())
        if self.episodes % tasks:
            raise ValueError(
                f"`episodes` ({self.episodes}) must be a multiple of the number of tasks ({tasks}, one per file): "
                "every epoch runs every task once"
            )
        return self

    def dataset(self) -> list[Task]:
        text = self.task_description.strip()
        title = text.splitlines()[0][:120]
        files = list(dict.fromkeys(f.strip() for f in self.files if f.strip()))
        if not files:
            return [Task(title=title, body=text, source="admin")]
        return [Task(title=f"{title} ({f})", body=text, files=[f], source="admin") for f in files]

    @property
    def epochs(self) -> int:
        return self.episodes // len(self.dataset())


class TrainingStarted(BaseModel):
    run_id: str
    status: str = "running"
    repo: str
    tasks: int
    epochs: int
    episodes: int
    dry_run: bool
    risk_score: float
    summary_url: str
    episodes_url: str


class ProposedChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_path: str = Field(min_length=1, max_length=1000)
    new_content: str | None = None
    change_type: ChangeType = ChangeType.UPDATE
    rationale: str = ""

    @model_validator(mode="after")
    def _content(self) -> ProposedChange:
        if self.change_type is ChangeType.DELETE and self.new_content is not None:
            raise ValueError(f"{self.file_path}: a delete carries no new_content")
        if self.change_type is not ChangeType.DELETE and self.new_content is None:
            raise ValueError(f"{self.file_path}: a {self.change_type.value} needs new_content (the whole new file)")
        return self


class ProposePR(BaseModel):
    """A pull request from given changes (whole files). A dry run returns the proposal and touches nothing."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=RUN_ID)
    title: str = Field(min_length=1, max_length=256)
    description: str = Field("", max_length=60_000)
    changes: list[ProposedChange] = Field(min_length=1, max_length=100)
    dry_run: bool = True
    repo_owner: str = Field(pattern=rf"^{REPO_PART}$")
    repo_name: str = Field(pattern=rf"^{REPO_PART}$")
    base_branch: str | None = Field(None, min_length=1, max_length=250, description="default: the repository's default branch")

    @property
    def repo(self) -> str:
        return f"{self.repo_owner}/{self.repo_name}"

    @property
    def proposal_id(self) -> str:
        return proposal_id_for(self.run_id, self.repo, self.title, self.model_dump_json(include={"changes"}))

    @property
    def branch(self) -> str:
        return f"aura-sicd/{self.proposal_id}"

    def body(self) -> str:
        lines = ["## Description", "", self.description.strip() or self.title, "", "## Changes Summary", ""]
        for change in self.changes:
            lines.append(f"- **{change.change_type.value.upper()}**: `{change.file_path}`")
            lines += [f"  {line}" for line in (change.rationale.strip() or "(no rationale given)").splitlines()]
        return pr_body("\n".join(lines), footer=f"Training Run ID: `{self.run_id}`\nProposal ID: `{self.proposal_id}`")

    def as_proposal(self) -> Proposal:
        """For the policy: whole-file updates count every line as added (the old file is not read)."""
        changes = [
            Change(file_path=c.file_path, change_type=ChangeType.DELETE, rationale=c.rationale)
            if c.change_type is ChangeType.DELETE
            else Change(file_path=c.file_path, change_type=ChangeType.CREATE, new_content=c.new_content, rationale=c.rationale)
            for c in self.changes
        ]
        return Proposal(summary=self.title, changes=changes)


class PullInfo(BaseModel):
    number: int
    html_url: str


class ProposalResult(BaseModel):
    proposal_id: str
    branch: str
    repo: str
    base_branch: str | None
    title: str
    body: str
    dry_run: bool
    policy: PolicyDecision
    risk_score: float
    commit: str | None = None
    pull_request: PullInfo | None = None


class RunStatus(RunSummary):
    status: str
    kind: str
    repo: str


class EpisodeList(BaseModel):
    run_id: str
    episodes: list[dict[str, Any]]  # full Episode records (iterations included), or EpisodeSummary with ?summary=1


class MemoryList(BaseModel):
    repo: str
    entries: list[StoredGuidance]


class MemoryRepo(BaseModel):
    repo: str  # GitHub `owner/name`, or a local folder name
    entries: int  # how many entries memory may use


class MemoryRepos(BaseModel):
    repositories: list[MemoryRepo]


class Forgotten(BaseModel):
    repo: str
    id: int
    deleted: bool


# --- auth, capabilities, audit ---------------------------------------------------------------------
