"""`JobRequest`: what a webhook delivery asks the bot to do, as a handler reads it from the delivery.

Everything a job needs that the delivery already says, nothing fetched (admission fills in the
installation and a PR's branches when the delivery lacks them). It is stored with the delivery row,
enqueued by admission (bot/jobs/admission.py) and is the durable workflow's input (bot/jobs/workflow.py).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.records import GuidanceEntry, utcnow


class JobKind(StrEnum):
    ISSUE = "issue"  # a labelled issue, or /improve on an issue: a new aura-sicd/<id> PR
    PR_ITERATE = "pr_iterate"  # our own PR: /improve or review feedback → a new commit on its branch
    PR_FOREIGN = "pr_foreign"  # someone else's PR: a new aura-sicd/<id> PR targeting its branch
    FEEDBACK = "feedback"  # our PR closed: merged (positive) or not (negative); no cycle
    FORGET = "forget"  # `/aura forget <id>`: admission deletes a guidance-memory entry and replies; never enqueued
    SCAN = "scan"  # scheduled (bot/jobs/scheduler.py): checks on the default branch, a FINDING job per finding
    FINDING = "finding"  # one finding of a scan: the cycle on it, a labelled PR when a fix is approved


class ReplyTarget(BaseModel):
    """Where the job answers: react to, or reply in the thread of, this object."""

    kind: Literal["issue", "issue_comment", "review", "review_comment"]
    id: int  # issue number for "issue", else the comment/review id


class JobRequest(BaseModel):
    kind: JobKind
    delivery_id: str
    event: str  # "issues.labeled", "issue_comment.created", ...
    installation_id: int | None = None  # absent in repository-webhook deliveries: admission looks it up
    repo: str  # "owner/name"
    clone_url: str
    default_branch: str = "main"
    number: int  # the issue or pull request number
    base_ref: str | None = None  # PR jobs: the branch the PR targets
    head_ref: str | None = None  # PR jobs: the PR's branch
    head_sha: str | None = None
    fork: bool = False  # PR jobs: the PR's branch lives in another repository (a fork); nothing is pushed for it
    pr_author: str | None = None  # PR jobs: who opened the PR; their title and body reach the prompt only with write access
    title: str = ""  # sanitized; issue comments are fetched by the job, not here
    body: str = ""  # sanitized
    guidance: list[GuidanceEntry] = Field(default_factory=list)  # human/review guidance, sanitized
    triggered_by: str  # the login that asked; review requests and permission checks use it
    label: str | None = None  # the trigger label to remove when done
    reply_to: list[ReplyTarget] = Field(default_factory=list)
    merged: bool | None = None  # FEEDBACK only
    memory_id: int | None = None  # FORGET only: the entry to delete (None: the comment gave no number)
    finding: dict[str, Any] | None = None  # FINDING only: the finding (bot.runs.scan_report.Finding) to fix
    coalesce_key: str | None = None  # jobs with the same key within the window become one
    coalesced_deliveries: list[str] = Field(default_factory=list)  # delivery ids merged into this one
    received_at: datetime = Field(default_factory=utcnow)

    @property
    def partition_key(self) -> str:
        """At most one job runs at a time per key: per PR branch for PR jobs, per issue otherwise."""
        if self.kind is JobKind.PR_ITERATE and self.head_ref:
            return f"{self.repo}:{self.head_ref}"
        if self.kind in (JobKind.SCAN, JobKind.FINDING):
            return f"{self.repo}:{self.kind.value}"  # one scan, and one finding, at a time per repository
        return f"{self.repo}#{self.number}"

    @property
    def needs_permission(self) -> bool:
        """Jobs that run the cycle for someone need a collaborator with write access; feedback and the
        scheduler's own jobs do not."""
        return self.kind not in (JobKind.FEEDBACK, JobKind.SCAN, JobKind.FINDING)

    def merge(self, later: JobRequest) -> JobRequest:
        """This job with a later one of the same coalesce key folded in: guidance and replies add up."""
        seen = {(t.kind, t.id) for t in self.reply_to}
        return self.model_copy(
            update={
                "guidance": [*self.guidance, *later.guidance],
                "reply_to": [*self.reply_to, *(t for t in later.reply_to if (t.kind, t.id) not in seen)],
                "head_sha": later.head_sha or self.head_sha,
                "coalesced_deliveries": [*self.coalesced_deliveries, later.delivery_id],
            }
        )
