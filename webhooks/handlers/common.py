"""Small pieces the handlers share: building jobs from payload parts."""

from __future__ import annotations

from typing import Any

from bot.github.job_request import JobKind, JobRequest, ReplyTarget
from bot.github.payloads import Issue, PullRequest, Repository
from bot.github.text import sanitize
from bot.records import GuidanceEntry
from webhooks.routing import HandlerContext

IMPROVE_COMMAND = "/improve"
TITLE_LIMIT = 300


def review_coalesce_key(repo: str, number: int) -> str:
    """One key per PR: a review and its line comments, arriving as a burst, make one iteration."""
    return f"{repo}#{number}:review"


def job_origin(ctx: HandlerContext, repository: Repository, installation_id: int | None) -> dict[str, Any]:
    """The fields every job takes from its delivery and its repository.

    The clone URL is built from the configured GitHub host and the full name (validated as `owner/name`),
    never taken from the payload: the installation token goes with git to that URL."""
    return {
        "delivery_id": ctx.delivery_id,
        "event": ctx.event,
        "installation_id": installation_id,
        "repo": repository.full_name,
        "clone_url": ctx.settings.clone_url(repository.full_name),
        "default_branch": repository.default_branch or "main",
    }


def issue_job(
    ctx: HandlerContext,
    repository: Repository,
    issue: Issue,
    *,
    installation_id: int | None,
    triggered_by: str,
    label: str | None = None,
    guidance: list[GuidanceEntry] | None = None,
    reply_to: list[ReplyTarget] | None = None,
) -> JobRequest:
    return JobRequest(
        kind=JobKind.ISSUE,
        **job_origin(ctx, repository, installation_id),
        number=issue.number,
        title=sanitize(issue.title, max_chars=TITLE_LIMIT),
        body=sanitize(issue.body),
        guidance=guidance or [],
        triggered_by=triggered_by,
        label=label,
        reply_to=reply_to or [ReplyTarget(kind="issue", id=issue.number)],
    )


def pr_job(
    ctx: HandlerContext,
    repository: Repository,
    pr: PullRequest,
    *,
    kind: JobKind,
    installation_id: int | None,
    triggered_by: str,
    guidance: list[GuidanceEntry],
    reply_to: list[ReplyTarget],
    coalesce_key: str | None = None,
) -> JobRequest:
    return JobRequest(
        kind=kind,
        **job_origin(ctx, repository, installation_id),
        number=pr.number,
        base_ref=pr.base.ref,
        head_ref=pr.head.ref,
        head_sha=pr.head.sha,
        title=sanitize(pr.title, max_chars=TITLE_LIMIT),
        body=sanitize(pr.body),
        guidance=guidance,
        triggered_by=triggered_by,
        reply_to=reply_to,
        coalesce_key=coalesce_key,
    )
