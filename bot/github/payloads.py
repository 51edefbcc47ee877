"""Tolerant models of the webhook fields we read, and nothing more.

githubkit's generated models describe today's github.com exactly, and refuse real deliveries that
differ (older GitHub Enterprise Server shapes, recorded payloads that lack newer fields). A delivery
must never be dropped because a model is stricter than GitHub, so here every model ignores unknown
keys and only what we cannot work without is required.

Tolerant of shape, strict about values: a delivery is signed, but what it carries is still input. Ids
and numbers are positive and fit in 64 bits (GitHub's own bound; the store's columns are BIGINT); every
string must be encodable (no lone surrogates), a login has no control characters and a repository
name is `owner/name` in GitHub's alphabet. A body that breaks these is refused with a 400 at the door instead of failing deep inside.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

BOT_BRANCH_PREFIX = "aura-sicd/"
MAX_ID = 2**63 - 1


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (no lone surrogates)") from exc
    return value


def check_strings(payload: object) -> object:
    """Every string in the delivery, wherever it sits, must be storable (see `_encodable`).

    Iterative, so a deeply nested body cannot exhaust the stack here."""
    pending = [payload]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            _encodable(value)
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return payload


Id = Annotated[int, Field(ge=1, le=MAX_ID)]  # GitHub ids and issue/PR numbers: positive, 64-bit
Line = Annotated[int, Field(ge=0, le=MAX_ID)]
Login = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f/]{1,255}$")]


def _real_name(value: str) -> str:
    if {part for part in value.split("/")} & {".", ".."}:
        raise ValueError("`.` and `..` are not repository or owner names")
    return value


FullName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"),
                     AfterValidator(_real_name)]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Account(_Tolerant):
    login: Login
    id: Id | None = None
    type: str | None = None  # "User", "Bot", "Organization"

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot" or self.login.endswith("[bot]")


class Repository(_Tolerant):
    full_name: FullName
    id: Id | None = None
    name: str | None = None
    owner: Account | None = None
    clone_url: str | None = None
    html_url: str | None = None
    default_branch: str | None = None
    private: bool | None = None


class InstallationRef(_Tolerant):
    id: Id


class Installation(_Tolerant):
    id: Id
    account: Account | None = None
    app_id: Id | None = None
    repository_selection: str | None = None


class RepositoryRef(_Tolerant):
    """A repository as listed in installation events (no clone URL there)."""

    full_name: FullName
    id: Id | None = None
    private: bool | None = None


class Label(_Tolerant):
    name: str


class IssuePullRequestLink(_Tolerant):
    """Present on an issue that is really a pull request."""

    url: str | None = None
    html_url: str | None = None


class Issue(_Tolerant):
    number: Id
    title: str = ""
    body: str | None = None
    user: Account | None = None
    labels: list[Label] = Field(default_factory=list)
    state: str | None = None
    html_url: str | None = None
    pull_request: IssuePullRequestLink | None = None

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None


class IssueComment(_Tolerant):
    id: Id
    body: str | None = None
    user: Account | None = None
    html_url: str | None = None


class GitRef(_Tolerant):
    ref: str
    sha: str | None = None
    repo: Repository | None = None  # null when the fork was deleted


class PullRequest(_Tolerant):
    number: Id
    title: str = ""
    body: str | None = None
    user: Account | None = None
    state: str | None = None
    html_url: str | None = None
    draft: bool | None = None
    merged: bool | None = None
    merged_at: str | None = None
    head: GitRef
    base: GitRef

    def is_bot_pr(self, repository: Repository | str) -> bool:
        """Ours: an `aura-sicd/` branch in the same repository (a fork's branch of that name is not)."""
        full_name = repository if isinstance(repository, str) else repository.full_name
        head_repo = self.head.repo.full_name if self.head.repo else None
        return self.head.ref.startswith(BOT_BRANCH_PREFIX) and head_repo == full_name


class Review(_Tolerant):
    id: Id
    body: str | None = None
    state: str = ""  # "commented", "changes_requested", "approved" (older servers send upper case)
    user: Account | None = None
    commit_id: str | None = None
    html_url: str | None = None

    @property
    def normalized_state(self) -> str:
        return self.state.lower()


class ReviewComment(_Tolerant):
    id: Id
    body: str | None = None
    path: str | None = None
    line: Line | None = None
    original_line: Line | None = None
    start_line: Line | None = None
    diff_hunk: str | None = None
    commit_id: str | None = None
    pull_request_review_id: Id | None = None
    in_reply_to_id: Id | None = None
    user: Account | None = None
    html_url: str | None = None


# --- events: one per X-GitHub-Event we handle ----------------------------------------------------


class Event(_Tolerant):
    action: str | None = None
    sender: Account | None = None
    repository: Repository | None = None
    installation: InstallationRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: object) -> object:
        return check_strings(data)

    @property
    def installation_id(self) -> int | None:
        return self.installation.id if self.installation else None


class PingEvent(Event):
    zen: str | None = None
    hook_id: Id | None = None


class IssuesEvent(Event):
    repository: Repository
    issue: Issue
    label: Label | None = None


class IssueCommentEvent(Event):
    repository: Repository
    issue: Issue
    comment: IssueComment


class PullRequestEvent(Event):
    repository: Repository
    number: Id | None = None
    pull_request: PullRequest


class PullRequestReviewEvent(Event):
    repository: Repository
    review: Review
    pull_request: PullRequest


class PullRequestReviewCommentEvent(Event):
    repository: Repository
    comment: ReviewComment
    pull_request: PullRequest


class InstallationEvent(Event):
    installation: Installation  # type: ignore[assignment]
    repositories: list[RepositoryRef] = Field(default_factory=list)
    requester: Account | None = None


class InstallationRepositoriesEvent(Event):
    installation: Installation  # type: ignore[assignment]
    repository_selection: str | None = None
    repositories_added: list[RepositoryRef] = Field(default_factory=list)
    repositories_removed: list[RepositoryRef] = Field(default_factory=list)
